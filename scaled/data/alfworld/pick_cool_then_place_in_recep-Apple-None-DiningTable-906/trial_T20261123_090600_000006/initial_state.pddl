(define (problem plan_trial_T20261123_090600_000006)
(:domain alfred)
(:objects
agent1 - agent
        AppleType - otype
        BreadType - otype
        EggType - otype
        MugType - otype
        CounterTopType - rtype
        DiningTableType - rtype
        FridgeType - rtype
        MicrowaveType - rtype
        Apple_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 - object
        Bread_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 - object
        Egg_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 - object
        Mug_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 - object
        CounterTop_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50 - receptacle
        Fridge_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09 - receptacle
        DiningTable_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68 - receptacle
        Microwave_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27 - receptacle
        loc_bar_1_bar__minus_7_bar_0_bar_15 - location
        loc_bar__minus_1_bar__minus_4_bar_3_bar_60 - location
        loc_bar__minus_3_bar__minus_1_bar_2_bar_45 - location
        loc_bar__minus_5_bar_2_bar_1_bar_30 - location
        loc_bar__minus_7_bar_5_bar_0_bar_15 - location
        )

(:init
        (receptacleType CounterTop_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50 CounterTopType)
        (receptacleType Fridge_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09 FridgeType)
        (receptacleType DiningTable_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68 DiningTableType)
        (receptacleType Microwave_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27 MicrowaveType)
        (objectType Apple_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 AppleType)
        (objectType Bread_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 BreadType)
        (objectType Egg_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 EggType)
        (objectType Mug_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 MugType)
        (canContain CounterTopType AppleType)
        (canContain CounterTopType BreadType)
        (canContain CounterTopType EggType)
        (canContain CounterTopType MugType)
        (canContain DiningTableType AppleType)
        (canContain DiningTableType BreadType)
        (canContain DiningTableType EggType)
        (canContain DiningTableType MugType)
        (canContain FridgeType AppleType)
        (canContain FridgeType BreadType)
        (canContain FridgeType EggType)
        (canContain FridgeType MugType)
        (canContain MicrowaveType AppleType)
        (canContain MicrowaveType BreadType)
        (canContain MicrowaveType EggType)
        (canContain MicrowaveType MugType)
        (cleanable Apple_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60)
        (coolable Apple_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60)
        (heatable Apple_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60)
        (pickupable Apple_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60)
        (coolable Bread_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01)
        (heatable Bread_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01)
        (pickupable Bread_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01)
        (coolable Egg_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42)
        (heatable Egg_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42)
        (pickupable Egg_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42)
        (cleanable Mug_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83)
        (coolable Mug_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83)
        (heatable Mug_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83)
        (isReceptacleObject Mug_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83)
        (pickupable Mug_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83)
        (openable Fridge_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09)
        (openable Microwave_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27)
        (atLocation agent1 loc_bar_1_bar__minus_7_bar_0_bar_15)
        (inReceptacle Apple_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 CounterTop_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50)
        (inReceptacle Bread_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 CounterTop_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50)
        (inReceptacle Egg_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 Fridge_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09)
        (inReceptacle Mug_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 DiningTable_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68)
        (receptacleAtLocation CounterTop_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50 loc_bar__minus_7_bar_5_bar_0_bar_15)
        (receptacleAtLocation Fridge_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09 loc_bar__minus_5_bar_2_bar_1_bar_30)
        (receptacleAtLocation DiningTable_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68 loc_bar__minus_3_bar__minus_1_bar_2_bar_45)
        (receptacleAtLocation Microwave_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27 loc_bar__minus_1_bar__minus_4_bar_3_bar_60)
        (objectAtLocation Apple_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 loc_bar__minus_7_bar_5_bar_0_bar_15)
        (objectAtLocation Bread_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 loc_bar__minus_7_bar_5_bar_0_bar_15)
        (objectAtLocation Egg_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 loc_bar__minus_5_bar_2_bar_1_bar_30)
        (objectAtLocation Mug_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 loc_bar__minus_3_bar__minus_1_bar_2_bar_45)
        )

    (:goal
        (and

                (exists (?r - receptacle)
                    (exists (?o - object)
                        (and
                            (coolable ?o)
                            (objectType ?o AppleType)
                            (receptacleType ?r DiningTableType)
                            (isCool ?o)
                            (inReceptacle ?o ?r)
                        )
                    )
                )
        )
    )
)
