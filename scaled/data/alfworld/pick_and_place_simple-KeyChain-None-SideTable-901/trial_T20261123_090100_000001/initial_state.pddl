(define (problem plan_trial_T20261123_090100_000001)
(:domain alfred)
(:objects
agent1 - agent
        CellPhoneType - otype
        CreditCardType - otype
        DeskLampType - otype
        KeyChainType - otype
        PenType - otype
        PillowType - otype
        ArmChairType - rtype
        BedType - rtype
        DeskType - rtype
        DrawerType - rtype
        SideTableType - rtype
        KeyChain_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 - object
        Pillow_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 - object
        CellPhone_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 - object
        Pen_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 - object
        CreditCard_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24 - object
        DeskLamp_bar__plus_07_dot_95_bar__plus_00_dot_75_bar__minus_03_dot_65 - object
        ArmChair_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50 - receptacle
        Bed_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09 - receptacle
        Desk_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68 - receptacle
        Drawer_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27 - receptacle
        SideTable_bar__minus_00_dot_08_bar__plus_00_dot_42_bar__plus_00_dot_86 - receptacle
        loc_bar_1_bar__minus_7_bar_0_bar_15 - location
        loc_bar_3_bar__minus_10_bar_1_bar_30 - location
        loc_bar__minus_1_bar__minus_4_bar_3_bar_60 - location
        loc_bar__minus_3_bar__minus_1_bar_2_bar_45 - location
        loc_bar__minus_5_bar_2_bar_1_bar_30 - location
        loc_bar__minus_7_bar_5_bar_0_bar_15 - location
        )

(:init
        (receptacleType ArmChair_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50 ArmChairType)
        (receptacleType Bed_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09 BedType)
        (receptacleType Desk_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68 DeskType)
        (receptacleType Drawer_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27 DrawerType)
        (receptacleType SideTable_bar__minus_00_dot_08_bar__plus_00_dot_42_bar__plus_00_dot_86 SideTableType)
        (objectType KeyChain_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 KeyChainType)
        (objectType Pillow_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 PillowType)
        (objectType CellPhone_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 CellPhoneType)
        (objectType Pen_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 PenType)
        (objectType CreditCard_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24 CreditCardType)
        (objectType DeskLamp_bar__plus_07_dot_95_bar__plus_00_dot_75_bar__minus_03_dot_65 DeskLampType)
        (canContain ArmChairType CellPhoneType)
        (canContain ArmChairType CreditCardType)
        (canContain ArmChairType KeyChainType)
        (canContain ArmChairType PillowType)
        (canContain BedType CellPhoneType)
        (canContain BedType PillowType)
        (canContain DeskType CellPhoneType)
        (canContain DeskType CreditCardType)
        (canContain DeskType DeskLampType)
        (canContain DeskType KeyChainType)
        (canContain DeskType PenType)
        (canContain DrawerType CellPhoneType)
        (canContain DrawerType CreditCardType)
        (canContain DrawerType KeyChainType)
        (canContain DrawerType PenType)
        (canContain SideTableType CellPhoneType)
        (canContain SideTableType CreditCardType)
        (canContain SideTableType DeskLampType)
        (canContain SideTableType KeyChainType)
        (canContain SideTableType PenType)
        (pickupable KeyChain_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60)
        (pickupable Pillow_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01)
        (pickupable CellPhone_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42)
        (pickupable Pen_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83)
        (pickupable CreditCard_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24)
        (toggleable DeskLamp_bar__plus_07_dot_95_bar__plus_00_dot_75_bar__minus_03_dot_65)
        (openable Drawer_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27)
        (atLocation agent1 loc_bar_3_bar__minus_10_bar_1_bar_30)
        (inReceptacle KeyChain_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 ArmChair_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50)
        (inReceptacle Pillow_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 Bed_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09)
        (inReceptacle CellPhone_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 Bed_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09)
        (inReceptacle Pen_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 Desk_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68)
        (inReceptacle CreditCard_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24 Drawer_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27)
        (inReceptacle DeskLamp_bar__plus_07_dot_95_bar__plus_00_dot_75_bar__minus_03_dot_65 SideTable_bar__minus_00_dot_08_bar__plus_00_dot_42_bar__plus_00_dot_86)
        (receptacleAtLocation ArmChair_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50 loc_bar__minus_7_bar_5_bar_0_bar_15)
        (receptacleAtLocation Bed_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09 loc_bar__minus_5_bar_2_bar_1_bar_30)
        (receptacleAtLocation Desk_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68 loc_bar__minus_3_bar__minus_1_bar_2_bar_45)
        (receptacleAtLocation Drawer_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27 loc_bar__minus_1_bar__minus_4_bar_3_bar_60)
        (receptacleAtLocation SideTable_bar__minus_00_dot_08_bar__plus_00_dot_42_bar__plus_00_dot_86 loc_bar_1_bar__minus_7_bar_0_bar_15)
        (objectAtLocation KeyChain_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 loc_bar__minus_7_bar_5_bar_0_bar_15)
        (objectAtLocation Pillow_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 loc_bar__minus_5_bar_2_bar_1_bar_30)
        (objectAtLocation CellPhone_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 loc_bar__minus_5_bar_2_bar_1_bar_30)
        (objectAtLocation Pen_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 loc_bar__minus_3_bar__minus_1_bar_2_bar_45)
        (objectAtLocation CreditCard_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24 loc_bar__minus_1_bar__minus_4_bar_3_bar_60)
        (objectAtLocation DeskLamp_bar__plus_07_dot_95_bar__plus_00_dot_75_bar__minus_03_dot_65 loc_bar_1_bar__minus_7_bar_0_bar_15)
        )

    (:goal
        (and

                (exists (?r - receptacle)
                    (exists (?o - object)
                        (and
                            (inReceptacle ?o ?r)
                            (objectType ?o KeyChainType)
                            (receptacleType ?r SideTableType)
                        )
                    )
                )
        )
    )
)
