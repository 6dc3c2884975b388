(define (problem plan_trial_T20261123_090700_000007)
(:domain alfred)
(:objects
agent1 - agent
        BookType - otype
        CreditCardType - otype
        KeyChainType - otype
        PenType - otype
        ArmChairType - rtype
        DeskType - rtype
        SafeType - rtype
        SofaType - rtype
        CreditCard_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 - object
        CreditCard_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 - object
        KeyChain_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 - object
        Pen_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 - object
        Book_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24 - object
        Sofa_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50 - receptacle
        Desk_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09 - receptacle
        Safe_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68 - receptacle
        ArmChair_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27 - receptacle
        loc_bar_1_bar__minus_7_bar_0_bar_15 - location
        loc_bar__minus_1_bar__minus_4_bar_3_bar_60 - location
        loc_bar__minus_3_bar__minus_1_bar_2_bar_45 - location
        loc_bar__minus_5_bar_2_bar_1_bar_30 - location
        loc_bar__minus_7_bar_5_bar_0_bar_15 - location
        )

(:init
        (receptacleType Sofa_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50 SofaType)
        (receptacleType Desk_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09 DeskType)
        (receptacleType Safe_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68 SafeType)
        (receptacleType ArmChair_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27 ArmChairType)
        (objectType CreditCard_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 CreditCardType)
        (objectType CreditCard_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 CreditCardType)
        (objectType KeyChain_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 KeyChainType)
        (objectType Pen_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 PenType)
        (objectType Book_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24 BookType)
        (canContain ArmChairType BookType)
        (canContain ArmChairType CreditCardType)
        (canContain ArmChairType KeyChainType)
        (canContain DeskType BookType)
        (canContain DeskType CreditCardType)
        (canContain DeskType KeyChainType)
        (canContain DeskType PenType)
        (canContain SafeType CreditCardType)
        (canContain SafeType KeyChainType)
        (canContain SofaType BookType)
        (canContain SofaType CreditCardType)
        (canContain SofaType KeyChainType)
        (pickupable CreditCard_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60)
        (pickupable CreditCard_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01)
        (pickupable KeyChain_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42)
        (pickupable Pen_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83)
        (pickupable Book_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24)
        (openable Safe_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68)
        (atLocation agent1 loc_bar_1_bar__minus_7_bar_0_bar_15)
        (inReceptacle CreditCard_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 Sofa_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50)
        (inReceptacle CreditCard_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 Desk_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09)
        (inReceptacle KeyChain_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 ArmChair_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27)
        (inReceptacle Pen_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 Desk_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09)
        (inReceptacle Book_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24 Sofa_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50)
        (receptacleAtLocation Sofa_bar__minus_03_dot_00_bar__plus_00_dot_02_bar__plus_02_dot_50 loc_bar__minus_7_bar_5_bar_0_bar_15)
        (receptacleAtLocation Desk_bar__minus_02_dot_27_bar__plus_00_dot_12_bar__plus_02_dot_09 loc_bar__minus_5_bar_2_bar_1_bar_30)
        (receptacleAtLocation Safe_bar__minus_01_dot_54_bar__plus_00_dot_22_bar__plus_01_dot_68 loc_bar__minus_3_bar__minus_1_bar_2_bar_45)
        (receptacleAtLocation ArmChair_bar__minus_00_dot_81_bar__plus_00_dot_32_bar__plus_01_dot_27 loc_bar__minus_1_bar__minus_4_bar_3_bar_60)
        (objectAtLocation CreditCard_bar__plus_04_dot_30_bar__plus_00_dot_50_bar__minus_01_dot_60 loc_bar__minus_7_bar_5_bar_0_bar_15)
        (objectAtLocation CreditCard_bar__plus_05_dot_03_bar__plus_00_dot_55_bar__minus_02_dot_01 loc_bar__minus_5_bar_2_bar_1_bar_30)
        (objectAtLocation KeyChain_bar__plus_05_dot_76_bar__plus_00_dot_60_bar__minus_02_dot_42 loc_bar__minus_1_bar__minus_4_bar_3_bar_60)
        (objectAtLocation Pen_bar__plus_06_dot_49_bar__plus_00_dot_65_bar__minus_02_dot_83 loc_bar__minus_5_bar_2_bar_1_bar_30)
        (objectAtLocation Book_bar__plus_07_dot_22_bar__plus_00_dot_70_bar__minus_03_dot_24 loc_bar__minus_7_bar_5_bar_0_bar_15)
        )

    (:goal
        (and

                (exists (?r - receptacle)
                    (exists (?o1 - object)
                        (and
                            (objectType ?o1 CreditCardType)
                            (receptacleType ?r SafeType)
                            (inReceptacle ?o1 ?r)
                            (exists (?o2 - object)
                                (and
                                    (not (= ?o1 ?o2))
                                    (objectType ?o2 CreditCardType)
                                    (receptacleType ?r SafeType)
                                    (inReceptacle ?o2 ?r)
                                )
                            )
                        )
                    )
                )
        )
    )
)
