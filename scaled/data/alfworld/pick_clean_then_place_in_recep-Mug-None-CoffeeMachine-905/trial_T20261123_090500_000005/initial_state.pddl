(define (problem plan_trial_T20261123_090500_000005)
(:domain alfred)
(:objects
agent1 - agent
        AppleType - otype
        MugType - otype
        PlateType - otype
        CabinetType - rtype
        CoffeeMachineType - rtype
        CounterTopType - rtype
        SinkBasinType - rtype
        Mug_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 - object
        Apple_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 - object
        Plate_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 - object
        Cabinet_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50 - receptacle
        Sink_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09_bar_SinkBasin - receptacle
        CoffeeMachine_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68 - receptacle
        CounterTop_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27 - receptacle
        loc_bar_1_bar__minus_7_bar_0_bar_15 - location
        loc_bar__minus_1_bar__minus_4_bar_3_bar_60 - location
        loc_bar__minus_3_bar__minus_1_bar_2_bar_45 - location
        loc_bar__minus_5_bar_2_bar_1_bar_30 - location
        loc_bar__minus_7_bar_5_bar_0_bar_15 - location
        )

(:init
        (receptacleType Cabinet_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50 CabinetType)
        (receptacleType Sink_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09_bar_SinkBasin SinkBasinType)
        (receptacleType CoffeeMachine_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68 CoffeeMachineType)
        (receptacleType CounterTop_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27 CounterTopType)
        (objectType Mug_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 MugType)
        (objectType Apple_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 AppleType)
        (objectType Plate_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 PlateType)
        (canContain CabinetType MugType)
        (canContain CabinetType PlateType)
        (canContain CoffeeMachineType MugType)
        (canContain CounterTopType AppleType)
        (canContain CounterTopType MugType)
        (canContain CounterTopType PlateType)
        (canContain SinkBasinType AppleType)
        (canContain SinkBasinType MugType)
        (canContain SinkBasinType PlateType)
        (cleanable Mug_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60)
        (coolable Mug_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60)
        (heatable Mug_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60)
        (isReceptacleObject Mug_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60)
        (pickupable Mug_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60)
        (cleanable Apple_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01)
        (coolable Apple_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01)
        (heatable Apple_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01)
        (pickupable Apple_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01)
        (cleanable Plate_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42)
        (coolable Plate_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42)
        (heatable Plate_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42)
        (isReceptacleObject Plate_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42)
        (pickupable Plate_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42)
        (openable Cabinet_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50)
        (atLocation agent1 loc_bar_1_bar__minus_7_bar_0_bar_15)
        (inReceptacle Mug_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 Cabinet_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50)
        (inReceptacle Apple_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 CounterTop_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27)
        (inReceptacle Plate_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 CounterTop_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27)
        (receptacleAtLocation Cabinet_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50 loc_bar__minus_7_bar_5_bar_0_bar_15)
        (receptacleAtLocation Sink_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09_bar_SinkBasin loc_bar__minus_5_bar_2_bar_1_bar_30)
        (receptacleAtLocation CoffeeMachine_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68 loc_bar__minus_3_bar__minus_1_bar_2_bar_45)
        (receptacleAtLocation CounterTop_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27 loc_bar__minus_1_bar__minus_4_bar_3_bar_60)
        (objectAtLocation Mug_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 loc_bar__minus_7_bar_5_bar_0_bar_15)
        (objectAtLocation Apple_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 loc_bar__minus_1_bar__minus_4_bar_3_bar_60)
        (objectAtLocation Plate_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 loc_bar__minus_1_bar__minus_4_bar_3_bar_60)
        )

    (:goal
        (and

                (exists (?r - receptacle)
                    (exists (?o - object)
                        (and
                            (cleanable ?o)
                            (objectType ?o MugType)
                            (receptacleType ?r CoffeeMachineType)
                            (isClean ?o)
                            (inReceptacle ?o ?r)
                        )
                    )
                )
        )
    )
)
