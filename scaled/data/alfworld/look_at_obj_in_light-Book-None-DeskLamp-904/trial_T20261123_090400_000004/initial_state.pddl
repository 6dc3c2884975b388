(define (problem plan_trial_T20261123_090400_000004)
(:domain alfred)
(:objects
agent1 - agent
        BookType - otype
        DeskLampType - otype
        KeyChainType - otype
        PencilType - otype
        PillowType - otype
        BedType - rtype
        DeskType - rtype
        DrawerType - rtype
        SideTableType - rtype
        Book_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 - object
        Pillow_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 - object
        DeskLamp_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 - object
        Pencil_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 - object
        KeyChain_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24 - object
        Bed_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50 - receptacle
        SideTable_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09 - receptacle
        Desk_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68 - receptacle
        Drawer_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27 - receptacle
        loc_bar_1_bar__minus_7_bar_0_bar_15 - location
        loc_bar__minus_1_bar__minus_4_bar_3_bar_60 - location
        loc_bar__minus_3_bar__minus_1_bar_2_bar_45 - location
        loc_bar__minus_5_bar_2_bar_1_bar_30 - location
        loc_bar__minus_7_bar_5_bar_0_bar_15 - location
        )

(:init
        (receptacleType Bed_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50 BedType)
        (receptacleType SideTable_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09 SideTableType)
        (receptacleType Desk_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68 DeskType)
        (receptacleType Drawer_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27 DrawerType)
        (objectType Book_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 BookType)
        (objectType Pillow_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 PillowType)
        (objectType DeskLamp_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 DeskLampType)
        (objectType Pencil_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 PencilType)
        (objectType KeyChain_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24 KeyChainType)
        (canContain BedType BookType)
        (canContain BedType PillowType)
        (canContain DeskType BookType)
        (canContain DeskType DeskLampType)
        (canContain DeskType KeyChainType)
        (canContain DeskType PencilType)
        (canContain DrawerType BookType)
        (canContain DrawerType KeyChainType)
        (canContain DrawerType PencilType)
        (canContain SideTableType BookType)
        (canContain SideTableType DeskLampType)
        (canContain SideTableType KeyChainType)
        (canContain SideTableType PencilType)
        (pickupable Book_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60)
        (pickupable Pillow_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01)
        (toggleable DeskLamp_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42)
        (pickupable Pencil_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83)
        (pickupable KeyChain_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24)
        (openable Drawer_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27)
        (atLocation agent1 loc_bar_1_bar__minus_7_bar_0_bar_15)
        (inReceptacle Book_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 Bed_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50)
        (inReceptacle Pillow_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 Bed_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50)
        (inReceptacle DeskLamp_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 SideTable_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09)
        (inReceptacle Pencil_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 Desk_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68)
        (inReceptacle KeyChain_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24 Drawer_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27)
        (receptacleAtLocation Bed_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50 loc_bar__minus_7_bar_5_bar_0_bar_15)
        (receptacleAtLocation SideTable_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09 loc_bar__minus_5_bar_2_bar_1_bar_30)
        (receptacleAtLocation Desk_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68 loc_bar__minus_3_bar__minus_1_bar_2_bar_45)
        (receptacleAtLocation Drawer_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27 loc_bar__minus_1_bar__minus_4_bar_3_bar_60)
        (objectAtLocation Book_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 loc_bar__minus_7_bar_5_bar_0_bar_15)
        (objectAtLocation Pillow_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 loc_bar__minus_7_bar_5_bar_0_bar_15)
        (objectAtLocation DeskLamp_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 loc_bar__minus_5_bar_2_bar_1_bar_30)
        (objectAtLocation Pencil_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 loc_bar__minus_3_bar__minus_1_bar_2_bar_45)
        (objectAtLocation KeyChain_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24 loc_bar__minus_1_bar__minus_4_bar_3_bar_60)
        )

    (:goal
        (and

                (exists (?ot - object ?r - receptacle ?a - agent ?l - location)
                    (and
                        (objectType ?ot DeskLampType)
                        (toggleable ?ot)
                        (isToggled ?ot)
                        (receptacleAtLocation ?r ?l)
                        (atLocation ?a ?l)
                        (inReceptacle ?ot ?r)
                    )
                )
                (exists (?o - object ?a - agent)
                    (and
                        (objectType ?o BookType)
                        (holds ?a ?o)
                    )
                )
        )
    )
)
