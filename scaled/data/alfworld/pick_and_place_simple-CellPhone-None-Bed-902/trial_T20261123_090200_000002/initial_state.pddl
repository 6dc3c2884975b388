(define (problem plan_trial_T20261123_090200_000002)
(:domain alfred)
(:objects
agent1 - agent
        BookType - otype
        CDType - otype
        CellPhoneType - otype
        PenType - otype
        PillowType - otype
        BedType - rtype
        DeskType - rtype
        DrawerType - rtype
        GarbageCanType - rtype
        Pen_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 - object
        CellPhone_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 - object
        Pillow_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 - object
        Book_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 - object
        CD_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24 - object
        Drawer_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50 - receptacle
        Drawer_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09 - receptacle
        Bed_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68 - receptacle
        Desk_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27 - receptacle
        GarbageCan_bar__minus_00_dot_08_bar__plus_00_dot_42_bar__plus_00_dot_86 - receptacle
        loc_bar_1_bar__minus_7_bar_0_bar_15 - location
        loc_bar_3_bar__minus_10_bar_1_bar_30 - location
        loc_bar__minus_1_bar__minus_4_bar_3_bar_60 - location
        loc_bar__minus_3_bar__minus_1_bar_2_bar_45 - location
        loc_bar__minus_5_bar_2_bar_1_bar_30 - location
        loc_bar__minus_7_bar_5_bar_0_bar_15 - location
        )

(:init
        (receptacleType Drawer_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50 DrawerType)
        (receptacleType Drawer_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09 DrawerType)
        (receptacleType Bed_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68 BedType)
        (receptacleType Desk_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27 DeskType)
        (receptacleType GarbageCan_bar__minus_00_dot_08_bar__plus_00_dot_42_bar__plus_00_dot_86 GarbageCanType)
        (objectType Pen_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 PenType)
        (objectType CellPhone_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 CellPhoneType)
        (objectType Pillow_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 PillowType)
        (objectType Book_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 BookType)
        (objectType CD_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24 CDType)
        (canContain BedType BookType)
        (canContain BedType CellPhoneType)
        (canContain BedType PillowType)
        (canContain DeskType BookType)
        (canContain DeskType CDType)
        (canContain DeskType CellPhoneType)
        (canContain DeskType PenType)
        (canContain DrawerType BookType)
        (canContain DrawerType CDType)
        (canContain DrawerType CellPhoneType)
        (canContain DrawerType PenType)
        (canContain GarbageCanType CDType)
        (canContain GarbageCanType PenType)
        (pickupable Pen_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60)
        (pickupable CellPhone_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01)
        (pickupable Pillow_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42)
        (pickupable Book_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83)
        (pickupable CD_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24)
        (openable Drawer_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50)
        (openable Drawer_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09)
        (atLocation agent1 loc_bar_3_bar__minus_10_bar_1_bar_30)
        (inReceptacle Pen_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 Drawer_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50)
        (inReceptacle CellPhone_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 Drawer_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09)
        (inReceptacle Pillow_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 Bed_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68)
        (inReceptacle Book_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 Desk_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27)
        (inReceptacle CD_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24 GarbageCan_bar__minus_00_dot_08_bar__plus_00_dot_42_bar__plus_00_dot_86)
        (receptacleAtLocation Drawer_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50 loc_bar__minus_7_bar_5_bar_0_bar_15)
        (receptacleAtLocation Drawer_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09 loc_bar__minus_5_bar_2_bar_1_bar_30)
        (receptacleAtLocation Bed_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68 loc_bar__minus_3_bar__minus_1_bar_2_bar_45)
        (receptacleAtLocation Desk_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27 loc_bar__minus_1_bar__minus_4_bar_3_bar_60)
        (receptacleAtLocation GarbageCan_bar__minus_00_dot_08_bar__plus_00_dot_42_bar__plus_00_dot_86 loc_bar_1_bar__minus_7_bar_0_bar_15)
        (objectAtLocation Pen_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 loc_bar__minus_7_bar_5_bar_0_bar_15)
        (objectAtLocation CellPhone_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 loc_bar__minus_5_bar_2_bar_1_bar_30)
        (objectAtLocation Pillow_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 loc_bar__minus_3_bar__minus_1_bar_2_bar_45)
        (objectAtLocation Book_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 loc_bar__minus_1_bar__minus_4_bar_3_bar_60)
        (objectAtLocation CD_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24 loc_bar_1_bar__minus_7_bar_0_bar_15)
        )

    (:goal
        (and

                (exists (?r - receptacle)
                    (exists (?o - object)
                        (and
                            (inReceptacle ?o ?r)
                            (objectType ?o CellPhoneType)
                            (receptacleType ?r BedType)
                        )
                    )
                )
        )
    )
)
