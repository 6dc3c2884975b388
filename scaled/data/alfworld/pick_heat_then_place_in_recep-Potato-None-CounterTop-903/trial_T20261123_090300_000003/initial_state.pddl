(define (problem plan_trial_T20261123_090300_000003)
(:domain alfred)
(:objects
agent1 - agent
        BreadType - otype
        EggType - otype
        MugType - otype
        PlateType - otype
        PotatoType - otype
        CabinetType - rtype
        CounterTopType - rtype
        FridgeType - rtype
        MicrowaveType - rtype
        SinkBasinType - rtype
        StoveBurnerType - rtype
        Bread_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 - object
        Potato_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 - object
        Egg_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 - object
        Plate_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 - object
        Mug_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24 - object
        CounterTop_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50 - receptacle
        Fridge_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09 - receptacle
        Microwave_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68 - receptacle
        Cabinet_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27 - receptacle
        Sink_bar__minus_00_dot_08_bar__plus_00_dot_42_bar__plus_00_dot_86_bar_SinkBasin - receptacle
        StoveBurner_bar__plus_00_dot_65_bar__plus_00_dot_52_bar__plus_00_dot_45 - receptacle
        loc_bar_1_bar__minus_7_bar_0_bar_15 - location
        loc_bar_3_bar__minus_10_bar_1_bar_30 - location
        loc_bar_5_bar__minus_13_bar_2_bar_45 - location
        loc_bar__minus_1_bar__minus_4_bar_3_bar_60 - location
        loc_bar__minus_3_bar__minus_1_bar_2_bar_45 - location
        loc_bar__minus_5_bar_2_bar_1_bar_30 - location
        loc_bar__minus_7_bar_5_bar_0_bar_15 - location
        )

(:init
        (receptacleType CounterTop_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50 CounterTopType)
        (receptacleType Fridge_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09 FridgeType)
        (receptacleType Microwave_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68 MicrowaveType)
        (receptacleType Cabinet_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27 CabinetType)
        (receptacleType Sink_bar__minus_00_dot_08_bar__plus_00_dot_42_bar__plus_00_dot_86_bar_SinkBasin SinkBasinType)
        (receptacleType StoveBurner_bar__plus_00_dot_65_bar__plus_00_dot_52_bar__plus_00_dot_45 StoveBurnerType)
        (objectType Bread_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 BreadType)
        (objectType Potato_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 PotatoType)
        (objectType Egg_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 EggType)
        (objectType Plate_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 PlateType)
        (objectType Mug_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24 MugType)
        (canContain CabinetType MugType)
        (canContain CabinetType PlateType)
        (canContain CounterTopType BreadType)
        (canContain CounterTopType EggType)
        (canContain CounterTopType MugType)
        (canContain CounterTopType PlateType)
        (canContain CounterTopType PotatoType)
        (canContain FridgeType BreadType)
        (canContain FridgeType EggType)
        (canContain FridgeType MugType)
        (canContain FridgeType PlateType)
        (canContain FridgeType PotatoType)
        (canContain MicrowaveType BreadType)
        (canContain MicrowaveType EggType)
        (canContain MicrowaveType MugType)
        (canContain MicrowaveType PlateType)
        (canContain MicrowaveType PotatoType)
        (canContain SinkBasinType BreadType)
        (canContain SinkBasinType EggType)
        (canContain SinkBasinType MugType)
        (canContain SinkBasinType PlateType)
        (canContain SinkBasinType PotatoType)
        (canContain StoveBurnerType PlateType)
        (coolable Bread_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60)
        (heatable Bread_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60)
        (pickupable Bread_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60)
        (cleanable Potato_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01)
        (coolable Potato_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01)
        (heatable Potato_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01)
        (pickupable Potato_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01)
        (coolable Egg_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42)
        (heatable Egg_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42)
        (pickupable Egg_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42)
        (cleanable Plate_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83)
        (coolable Plate_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83)
        (heatable Plate_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83)
        (isReceptacleObject Plate_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83)
        (pickupable Plate_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83)
        (cleanable Mug_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24)
        (coolable Mug_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24)
        (heatable Mug_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24)
        (isReceptacleObject Mug_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24)
        (pickupable Mug_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24)
        (openable Fridge_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09)
        (openable Microwave_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68)
        (openable Cabinet_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27)
        (atLocation agent1 loc_bar_5_bar__minus_13_bar_2_bar_45)
        (inReceptacle Bread_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 CounterTop_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50)
        (inReceptacle Potato_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 Fridge_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09)
        (inReceptacle Egg_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 Fridge_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09)
        (inReceptacle Plate_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 Cabinet_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27)
        (inReceptacle Mug_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24 Sink_bar__minus_00_dot_08_bar__plus_00_dot_42_bar__plus_00_dot_86_bar_SinkBasin)
        (receptacleAtLocation CounterTop_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50 loc_bar__minus_7_bar_5_bar_0_bar_15)
        (receptacleAtLocation Fridge_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09 loc_bar__minus_5_bar_2_bar_1_bar_30)
        (receptacleAtLocation Microwave_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68 loc_bar__minus_3_bar__minus_1_bar_2_bar_45)
        (receptacleAtLocation Cabinet_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27 loc_bar__minus_1_bar__minus_4_bar_3_bar_60)
        (receptacleAtLocation Sink_bar__minus_00_dot_08_bar__plus_00_dot_42_bar__plus_00_dot_86_bar_SinkBasin loc_bar_1_bar__minus_7_bar_0_bar_15)
        (receptacleAtLocation StoveBurner_bar__plus_00_dot_65_bar__plus_00_dot_52_bar__plus_00_dot_45 loc_bar_3_bar__minus_10_bar_1_bar_30)
        (objectAtLocation Bread_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 loc_bar__minus_7_bar_5_bar_0_bar_15)
        (objectAtLocation Potato_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 loc_bar__minus_5_bar_2_bar_1_bar_30)
        (objectAtLocation Egg_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 loc_bar__minus_5_bar_2_bar_1_bar_30)
        (objectAtLocation Plate_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 loc_bar__minus_1_bar__minus_4_bar_3_bar_60)
        (objectAtLocation Mug_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24 loc_bar_1_bar__minus_7_bar_0_bar_15)
        )

    (:goal
        (and

                (exists (?r - receptacle)
                    (exists (?o - object)
                        (and
                            (heatable ?o)
                            (objectType ?o PotatoType)
                            (receptacleType ?r CounterTopType)
                            (isHot ?o)
                            (inReceptacle ?o ?r)
                        )
                    )
                )
        )
    )
)
