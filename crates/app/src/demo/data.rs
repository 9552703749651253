//! The static material the demo generator draws from: the chain, its stores and menu,
//! Chinese names, and the vocabulary of preferences and tags. Everything here is
//! invented; any resemblance to a real company or person is a coincidence.

/// The chain's name and the tenant code it is created under.
pub const TENANT_CODE: &str = "demo";
pub const CHAIN_NAME: &str = "老城南酒家";
pub const OWNER_USERNAME: &str = "owner";
pub const OWNER_PASSWORD: &str = "patron-demo";
pub const OWNER_DISPLAY_NAME: &str = "陈国华";

/// A store: code, name, address, phone, and its share of the members (weight).
pub struct StoreSpec {
    pub code: &'static str,
    pub name: &'static str,
    pub address: &'static str,
    pub phone: &'static str,
    pub weight: u32,
}

pub const STORES: [StoreSpec; 3] = [
    StoreSpec {
        code: "sh-jingansi",
        name: "静安寺店",
        address: "上海市静安区南京西路1788号3楼",
        phone: "021-62881866",
        weight: 40,
    },
    StoreSpec {
        code: "sh-lujiazui",
        name: "陆家嘴店",
        address: "上海市浦东新区陆家嘴环路1000号5楼",
        phone: "021-58776688",
        weight: 33,
    },
    StoreSpec {
        code: "sh-xujiahui",
        name: "徐家汇店",
        address: "上海市徐汇区肇嘉浜路1111号2楼",
        phone: "021-64268899",
        weight: 27,
    },
];

/// Menu categories: name, English name.
pub const CATEGORIES: [(&str, &str); 9] = [
    ("凉菜", "Cold Dishes"),
    ("热菜", "Hot Dishes"),
    ("海鲜", "Seafood"),
    ("汤羹", "Soups"),
    ("主食", "Rice & Noodles"),
    ("点心", "Dim Sum & Pastries"),
    ("饮品", "Soft Drinks & Tea"),
    ("酒水", "Beer, Wine & Spirits"),
    ("套餐", "Set Menus"),
];

/// Index of the seafood category (members allergic to seafood do not favour it).
pub const SEAFOOD: usize = 2;

/// A dish on the menu.
pub struct Dish {
    pub category: usize,
    pub name: &'static str,
    pub name_en: &'static str,
    /// Regular price in fen.
    pub price: i64,
    /// Set menus, bottled drinks and alcohol do not join discounts.
    pub joins_discounts: bool,
    /// How often members name it as a favourite (0: never).
    pub popularity: u32,
    /// No meat or fish: what vegetarians may favour.
    pub veg: bool,
}

const fn dish(
    category: usize,
    name: &'static str,
    name_en: &'static str,
    price: i64,
    popularity: u32,
    veg: bool,
) -> Dish {
    Dish {
        category,
        name,
        name_en,
        price,
        joins_discounts: true,
        popularity,
        veg,
    }
}

const fn no_discount(
    category: usize,
    name: &'static str,
    name_en: &'static str,
    price: i64,
    popularity: u32,
) -> Dish {
    Dish {
        category,
        name,
        name_en,
        price,
        joins_discounts: false,
        popularity,
        veg: false,
    }
}

/// A Shanghai (本帮) menu with the usual national favourites.
pub const MENU: &[Dish] = &[
    // 凉菜
    dish(0, "凉拌黄瓜", "Smashed Cucumber Salad", 1_800, 3, true),
    dish(0, "口水鸡", "Mouth-Watering Chicken", 3_800, 3, false),
    dish(
        0,
        "夫妻肺片",
        "Sliced Beef and Ox Tongue in Chili Oil",
        4_200,
        2,
        false,
    ),
    dish(
        0,
        "皮蛋豆腐",
        "Century Egg with Silken Tofu",
        2_200,
        2,
        true,
    ),
    dish(0, "熏鱼", "Shanghai Smoked Fish", 4_600, 4, false),
    dish(0, "醉鸡", "Drunken Chicken", 5_200, 3, false),
    dish(
        0,
        "四喜烤麸",
        "Braised Wheat Gluten with Mushrooms",
        2_600,
        2,
        true,
    ),
    dish(
        0,
        "马兰头拌香干",
        "Kalimeris with Dried Tofu",
        2_400,
        1,
        true,
    ),
    dish(
        0,
        "老醋木耳",
        "Wood Ear Mushrooms in Aged Vinegar",
        2_200,
        1,
        true,
    ),
    dish(0, "盐水毛豆", "Salted Edamame", 1_600, 1, true),
    // 热菜
    dish(
        1,
        "红烧肉",
        "Braised Pork Belly, Shanghai Style",
        6_800,
        5,
        false,
    ),
    dish(1, "宫保鸡丁", "Kung Pao Chicken", 4_800, 4, false),
    dish(1, "鱼香肉丝", "Yu-Xiang Shredded Pork", 4_200, 3, false),
    dish(1, "麻婆豆腐", "Mapo Tofu", 3_200, 3, false),
    dish(
        1,
        "糖醋里脊",
        "Sweet and Sour Pork Tenderloin",
        5_200,
        3,
        false,
    ),
    dish(1, "回锅肉", "Twice-Cooked Pork", 4_600, 2, false),
    dish(
        1,
        "京酱肉丝",
        "Shredded Pork in Sweet Bean Sauce",
        4_600,
        2,
        false,
    ),
    dish(1, "干煸四季豆", "Dry-Fried Green Beans", 3_200, 2, true),
    dish(
        1,
        "地三鲜",
        "Potato, Aubergine and Green Pepper",
        3_600,
        2,
        true,
    ),
    dish(1, "番茄炒蛋", "Scrambled Eggs with Tomato", 2_800, 3, true),
    dish(1, "蚝油生菜", "Lettuce in Oyster Sauce", 2_600, 1, true),
    dish(1, "清炒时蔬", "Stir-Fried Seasonal Greens", 2_800, 2, true),
    dish(
        1,
        "葱爆羊肉",
        "Stir-Fried Lamb with Scallions",
        6_800,
        2,
        false,
    ),
    dish(
        1,
        "黑椒牛柳",
        "Beef Tenderloin with Black Pepper",
        7_800,
        3,
        false,
    ),
    dish(1, "东坡肉", "Dongpo Pork", 7_200, 3, false),
    dish(
        1,
        "油焖春笋",
        "Braised Spring Bamboo Shoots",
        3_800,
        3,
        true,
    ),
    dish(1, "八宝辣酱", "Eight-Treasure Spicy Sauce", 4_600, 2, false),
    dish(
        1,
        "红烧狮子头",
        "Braised Lion's Head Meatballs",
        5_800,
        4,
        false,
    ),
    // 海鲜
    dish(
        2,
        "松鼠桂鱼",
        "Squirrel-Shaped Mandarin Fish",
        16_800,
        5,
        false,
    ),
    dish(2, "清蒸鲈鱼", "Steamed Sea Bass", 12_800, 4, false),
    dish(2, "油爆虾", "Quick-Fried River Shrimp", 9_800, 4, false),
    dish(2, "龙井虾仁", "Longjing Tea Shrimp", 11_800, 3, false),
    dish(2, "香辣蟹", "Spicy Fried Crab", 15_800, 2, false),
    dish(
        2,
        "蒜蓉粉丝蒸扇贝",
        "Steamed Scallops with Garlic and Vermicelli",
        8_800,
        3,
        false,
    ),
    dish(
        2,
        "葱姜炒花蟹",
        "Stir-Fried Crab with Ginger and Scallion",
        18_800,
        2,
        false,
    ),
    dish(
        2,
        "清蒸大闸蟹",
        "Steamed Hairy Crab (in season)",
        19_800,
        3,
        false,
    ),
    dish(2, "响油鳝丝", "Sizzling Eel Shreds", 10_800, 3, false),
    dish(
        2,
        "白灼基围虾",
        "Poached Greasyback Shrimp",
        9_800,
        2,
        false,
    ),
    dish(
        2,
        "椒盐濑尿虾",
        "Salt and Pepper Mantis Shrimp",
        13_800,
        1,
        false,
    ),
    dish(2, "红烧划水", "Braised Carp Tail", 7_800, 1, false),
    // 汤羹
    dish(
        3,
        "腌笃鲜",
        "Bamboo Shoot Soup with Fresh and Cured Pork",
        8_800,
        4,
        false,
    ),
    dish(3, "西湖牛肉羹", "West Lake Beef Soup", 4_800, 2, false),
    dish(3, "酸辣汤", "Hot and Sour Soup", 3_200, 2, false),
    dish(3, "番茄蛋花汤", "Tomato and Egg Drop Soup", 2_600, 1, true),
    dish(
        3,
        "老鸭汤",
        "Old Duck Soup with Pickled Bamboo",
        7_800,
        2,
        false,
    ),
    dish(3, "蟹粉豆腐羹", "Crab Roe and Tofu Soup", 8_800, 2, false),
    dish(
        3,
        "冬瓜火腿汤",
        "Winter Melon and Ham Soup",
        4_200,
        1,
        false,
    ),
    // 主食
    no_discount(4, "米饭", "Steamed Rice", 300, 0),
    dish(4, "扬州炒饭", "Yangzhou Fried Rice", 3_200, 2, false),
    dish(4, "葱油拌面", "Scallion Oil Noodles", 2_200, 3, true),
    dish(4, "阳春面", "Plain Noodle Soup", 1_600, 1, true),
    dish(
        4,
        "雪菜肉丝面",
        "Noodle Soup with Pickled Greens and Pork",
        2_800,
        2,
        false,
    ),
    dish(4, "蟹粉拌面", "Noodles with Crab Roe", 9_800, 2, false),
    dish(4, "上海菜饭", "Shanghai Vegetable Rice", 1_800, 1, false),
    dish(
        4,
        "上海粗炒",
        "Shanghai Fried Thick Noodles",
        3_200,
        2,
        false,
    ),
    // 点心
    dish(5, "小笼包", "Xiaolongbao (Soup Dumplings)", 2_800, 5, false),
    dish(5, "生煎包", "Pan-Fried Pork Buns", 2_200, 4, false),
    dish(5, "蟹粉小笼", "Crab Roe Soup Dumplings", 5_800, 3, false),
    dish(5, "虾饺", "Crystal Shrimp Dumplings", 3_200, 2, false),
    dish(5, "糯米烧卖", "Glutinous Rice Shaomai", 2_400, 2, false),
    dish(5, "春卷", "Spring Rolls", 1_800, 2, false),
    dish(5, "葱油饼", "Scallion Pancake", 1_600, 2, true),
    dish(
        5,
        "酒酿圆子",
        "Sweet Rice Balls in Fermented Rice Soup",
        1_800,
        2,
        true,
    ),
    dish(5, "八宝饭", "Eight-Treasure Rice Pudding", 3_200, 2, true),
    dish(
        5,
        "桂花糖藕",
        "Sweet Lotus Root with Osmanthus",
        2_800,
        3,
        true,
    ),
    // 饮品
    dish(6, "酸梅汤", "Sour Plum Drink", 1_200, 1, true),
    dish(6, "鲜榨橙汁", "Fresh Orange Juice", 2_800, 0, true),
    dish(6, "鲜榨西瓜汁", "Fresh Watermelon Juice", 2_600, 0, true),
    dish(6, "椰汁", "Coconut Milk", 1_800, 0, true),
    no_discount(6, "可口可乐", "Coca-Cola", 800, 0),
    no_discount(6, "雪碧", "Sprite", 800, 0),
    no_discount(6, "王老吉", "Wong Lo Kat Herbal Tea", 800, 0),
    dish(6, "西湖龙井（壶）", "Longjing Tea (pot)", 6_800, 0, true),
    dish(6, "菊花茶（壶）", "Chrysanthemum Tea (pot)", 3_800, 0, true),
    no_discount(6, "矿泉水", "Mineral Water", 600, 0),
    // 酒水
    no_discount(7, "青岛啤酒", "Tsingtao Beer", 1_500, 0),
    no_discount(7, "雪花啤酒", "Snow Beer", 1_200, 0),
    no_discount(
        7,
        "绍兴黄酒（五年陈）",
        "Shaoxing Rice Wine, 5 Years",
        8_800,
        0,
    ),
    no_discount(
        7,
        "石库门上海老酒",
        "Shikumen Shanghai Rice Wine",
        12_800,
        0,
    ),
    no_discount(7, "长城干红", "Great Wall Dry Red", 19_800, 0),
    no_discount(7, "张裕解百纳", "Changyu Cabernet Gernischt", 26_800, 0),
    no_discount(
        7,
        "五粮液（500ml）",
        "Wuliangye Baijiu (500 ml)",
        128_000,
        0,
    ),
    // 套餐
    no_discount(8, "双人套餐", "Set Menu for Two", 29_800, 0),
    no_discount(8, "四人家庭套餐", "Family Set Menu for Four", 58_800, 0),
    no_discount(
        8,
        "商务宴请套餐（十人）",
        "Business Banquet for Ten",
        288_800,
        0,
    ),
    no_discount(
        8,
        "生日宴套餐（十人）",
        "Birthday Banquet for Ten",
        188_800,
        0,
    ),
];

/// Surnames with their approximate share of the population (per ten thousand people,
/// rounded from the 2020 census household-register tables); the rare two-character
/// surnames appear now and then.
pub const SURNAMES: &[(&str, u32)] = &[
    ("王", 712),
    ("李", 700),
    ("张", 674),
    ("刘", 538),
    ("陈", 453),
    ("杨", 308),
    ("黄", 223),
    ("赵", 229),
    ("吴", 205),
    ("周", 192),
    ("徐", 145),
    ("孙", 138),
    ("马", 129),
    ("朱", 128),
    ("胡", 116),
    ("郭", 115),
    ("何", 106),
    ("林", 104),
    ("高", 100),
    ("罗", 95),
    ("郑", 88),
    ("梁", 86),
    ("谢", 76),
    ("宋", 70),
    ("唐", 64),
    ("许", 62),
    ("韩", 61),
    ("冯", 60),
    ("邓", 59),
    ("曹", 57),
    ("彭", 56),
    ("曾", 54),
    ("肖", 53),
    ("田", 52),
    ("董", 51),
    ("袁", 49),
    ("潘", 47),
    ("于", 47),
    ("蒋", 46),
    ("蔡", 45),
    ("余", 44),
    ("杜", 43),
    ("叶", 42),
    ("程", 41),
    ("苏", 40),
    ("魏", 39),
    ("吕", 38),
    ("丁", 37),
    ("任", 36),
    ("沈", 35),
    ("姚", 34),
    ("卢", 33),
    ("姜", 32),
    ("崔", 31),
    ("钟", 30),
    ("谭", 29),
    ("陆", 29),
    ("汪", 28),
    ("范", 27),
    ("金", 26),
    ("石", 26),
    ("廖", 25),
    ("贾", 24),
    ("夏", 24),
    ("韦", 23),
    ("付", 23),
    ("方", 22),
    ("白", 22),
    ("邹", 21),
    ("孟", 21),
    ("熊", 20),
    ("秦", 20),
    ("邱", 20),
    ("江", 19),
    ("尹", 19),
    ("薛", 18),
    ("段", 17),
    ("雷", 17),
    ("侯", 16),
    ("龙", 16),
    ("史", 16),
    ("陶", 15),
    ("黎", 15),
    ("贺", 15),
    ("顾", 14),
    ("毛", 14),
    ("郝", 14),
    ("龚", 13),
    ("邵", 13),
    ("万", 12),
    ("钱", 12),
    ("严", 12),
    ("武", 11),
    ("戴", 11),
    ("孔", 9),
    ("汤", 9),
    ("欧阳", 3),
    ("上官", 1),
    ("司马", 1),
    ("诸葛", 1),
];

/// Characters common in men's given names.
pub const MALE_CHARS: &[&str] = &[
    "伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华", "飞",
    "鑫", "波", "宇", "浩", "凯", "健", "俊", "帆", "旭", "宁", "龙", "林", "峰", "建", "国", "志",
    "文", "博", "晨", "阳", "东", "亮", "成", "海", "振", "毅", "昊", "天", "轩", "睿", "哲", "坤",
    "锋", "诚", "彬", "翔",
];

/// Characters common in women's given names.
pub const FEMALE_CHARS: &[&str] = &[
    "芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "秀", "英", "玲", "婷", "雪", "慧", "莹", "燕",
    "琳", "晶", "颖", "倩", "洁", "红", "梅", "琴", "蕾", "薇", "欣", "怡", "佳", "悦", "雨", "涵",
    "萱", "诗", "梦", "璐", "彤", "妍", "瑶", "萍", "月", "婉", "琪", "露", "岚", "丹", "蓉", "菲",
];

/// Characters that open given names of either sex (晓明, 晓燕; 子轩, 子涵).
pub const NEUTRAL_CHARS: &[&str] = &[
    "晓", "子", "嘉", "思", "一", "佳", "欣", "文", "雨", "心", "安", "春", "秋", "亦", "若", "立",
];

/// Whole given names typical of people born before about 1970.
pub const OLD_MALE_NAMES: &[&str] = &[
    "建国", "建军", "国强", "国平", "志强", "建华", "卫东", "德明", "永刚", "金龙", "国庆", "红军",
    "振华", "爱国", "宝林", "福生",
];
pub const OLD_FEMALE_NAMES: &[&str] = &[
    "秀英", "桂英", "淑珍", "玉兰", "秀兰", "凤英", "丽华", "桂兰", "淑英", "玉梅", "秀珍", "美华",
    "爱华", "金凤", "桂芳", "素琴",
];

/// Whole given names typical of people born from about 1995.
pub const YOUNG_MALE_NAMES: &[&str] = &[
    "子轩", "浩然", "宇轩", "梓豪", "俊杰", "一鸣", "子豪", "博文", "皓轩", "天佑", "浩宇", "思远",
    "沐阳", "梓睿", "嘉诚", "奕辰",
];
pub const YOUNG_FEMALE_NAMES: &[&str] = &[
    "欣怡", "梓涵", "诗涵", "雨萱", "可欣", "语嫣", "思彤", "子涵", "一诺", "梦琪", "雨桐", "若曦",
    "佳琪", "梓萱", "心怡", "诗琪",
];

/// Mainland mobile prefixes (three digits; eight digits follow). Distinct, so that the
/// phone permutation is a bijection.
pub const MOBILE_PREFIXES: &[u16] = &[
    130, 131, 132, 133, 134, 135, 136, 137, 138, 139, 150, 151, 152, 153, 155, 156, 157, 158, 159,
    166, 173, 175, 176, 177, 178, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 191, 198, 199,
];

/// Administrative-division codes for resident ID numbers (mostly Shanghai districts, some
/// of the provinces a Shanghai restaurant's guests come from), with weights.
pub const ID_AREAS: &[(&str, u32)] = &[
    ("310101", 8),  // 上海 黄浦
    ("310104", 10), // 上海 徐汇
    ("310105", 7),  // 上海 长宁
    ("310106", 9),  // 上海 静安
    ("310107", 7),  // 上海 普陀
    ("310109", 6),  // 上海 虹口
    ("310110", 7),  // 上海 杨浦
    ("310112", 8),  // 上海 闵行
    ("310113", 5),  // 上海 宝山
    ("310115", 12), // 上海 浦东
    ("320102", 3),  // 南京 玄武
    ("320505", 3),  // 苏州 虎丘
    ("320602", 2),  // 南通 崇川
    ("330106", 3),  // 杭州 西湖
    ("330203", 2),  // 宁波 海曙
    ("340104", 2),  // 合肥 蜀山
    ("110105", 2),  // 北京 朝阳
    ("370102", 1),  // 济南 历下
    ("420106", 1),  // 武汉 武昌
    ("430103", 1),  // 长沙 天心
    ("440106", 1),  // 广州 天河
    ("510107", 1),  // 成都 武侯
    ("362502", 1),  // 江西 抚州
    ("411302", 1),  // 河南 南阳
];

pub const DISTRICTS: &[&str] = &[
    "静安区",
    "徐汇区",
    "黄浦区",
    "浦东新区",
    "长宁区",
    "普陀区",
    "虹口区",
    "杨浦区",
    "闵行区",
    "宝山区",
];
pub const ROADS: &[&str] = &[
    "南京西路",
    "淮海中路",
    "衡山路",
    "世纪大道",
    "延安西路",
    "肇嘉浜路",
    "漕溪北路",
    "天目西路",
    "四平路",
    "虹桥路",
    "张杨路",
    "万航渡路",
    "愚园路",
    "复兴中路",
    "长寿路",
    "龙华中路",
];

pub const EMAIL_DOMAINS: &[(&str, u32)] = &[
    ("163.com", 30),
    ("126.com", 12),
    ("sina.com", 6),
    ("foxmail.com", 8),
    ("outlook.com", 8),
    ("gmail.com", 5),
    ("hotmail.com", 4),
    ("sohu.com", 3),
];

/// Spiciness: at most one per member (with weights, out of 100).
pub const SPICE: &[(&str, u32)] = &[("微辣", 20), ("中辣", 8), ("特辣", 3), ("不吃辣", 12)];
/// Other tastes, each independent (probability in percent).
pub const TASTES: &[(&str, u32)] = &[
    ("不吃香菜", 15),
    ("少盐", 12),
    ("少油", 10),
    ("不吃葱", 8),
    ("不吃蒜", 5),
    ("偏甜", 6),
    ("清淡", 8),
    ("不吃内脏", 6),
    ("不吃牛肉", 2),
];
pub const VEGETARIAN: &str = "素食";
/// Dishes (by a fragment of their name) that a taste rules out as a favourite.
pub const TASTE_EXCLUDES: &[(&str, &[&str])] = &[
    ("不吃蒜", &["蒜"]),
    ("不吃葱", &["葱"]),
    ("不吃牛肉", &["牛"]),
    ("不吃内脏", &["肺片"]),
    (
        "不吃辣",
        &["辣", "口水鸡", "夫妻肺片", "麻婆", "宫保", "回锅肉", "鱼香"],
    ),
];

pub const SEATS: &[(&str, u32)] = &[
    ("靠窗", 30),
    ("包间", 25),
    ("大厅", 15),
    ("安静角落", 12),
    ("卡座", 10),
    ("靠近儿童游乐区", 4),
    ("无障碍座位", 2),
];

pub const ALLERGIES: &[(&str, u32)] = &[
    ("花生", 25),
    ("海鲜", 20),
    ("虾", 12),
    ("蟹", 10),
    ("芒果", 8),
    ("坚果", 8),
    ("乳制品", 6),
    ("鸡蛋", 5),
    ("麸质", 3),
    ("酒精", 3),
];

/// Allergies that rule out the seafood category and dishes naming these characters.
pub const SEAFOOD_ALLERGIES: &[&str] = &["海鲜", "虾", "蟹"];
pub const SEAFOOD_CHARS: &[char] = &['虾', '蟹', '鱼', '贝', '鳝'];

pub const NOTES: &[&str] = &[
    "每次来都点松鼠桂鱼，喜欢甜口",
    "周末常带父母来吃饭，老人牙口不好，菜要烧得酥烂",
    "喜欢靠窗的位置，提前一天电话订座",
    "对服务要求高，上菜请报菜名",
    "常点外卖，地址在公司",
    "孩子对花生过敏，点菜时请提醒厨房",
    "结婚纪念日在十月，可推荐套餐",
    "喜欢喝石库门老酒，温热",
    "开发票抬头为公司，需专票",
    "上次生日宴很满意，答应明年再来",
];

pub const CHURN_NOTES: &[(&str, &[&str])] = &[
    ("price", &["觉得最近涨价太多", "改去团购更便宜的店"]),
    ("inconvenience", &["停车不方便", "公司搬到了郊区，来得少了"]),
    (
        "found_better",
        &["附近开了新的本帮菜馆", "更喜欢朋友推荐的那家"],
    ),
    (
        "service_failure",
        &["上次上菜太慢投诉过", "订座被弄错，很不满意"],
    ),
    ("moved", &["搬到杭州了", "出国工作"]),
    ("other", &["很久没来了，原因不明"]),
];

/// Company names: prefix + core + kind, unique by (prefix, core).
pub const COMPANY_PREFIXES: &[&str] = &[
    "申城", "浦江", "华亭", "沪联", "江南", "外滩", "静安", "金桥", "张江", "长宁",
];
pub const COMPANY_CORES: &[&str] = &[
    "恒信", "博远", "启明", "瑞丰", "鼎盛", "宏达", "锦程", "天成", "卓越", "汇通",
];
/// Kind of company and its industry.
pub const COMPANY_KINDS: &[(&str, &str)] = &[
    ("科技有限公司", "信息技术"),
    ("国际贸易有限公司", "贸易"),
    ("投资管理有限公司", "金融"),
    ("律师事务所", "法律服务"),
    ("建筑设计院", "建筑设计"),
    ("广告有限公司", "广告传媒"),
    ("物流有限公司", "物流"),
    ("医药有限公司", "医药"),
    ("会计师事务所", "会计"),
    ("置业有限公司", "房地产"),
];
pub const TITLES: &[&str] = &[
    "总经理",
    "副总经理",
    "行政主管",
    "销售总监",
    "项目经理",
    "财务经理",
    "行政助理",
    "市场经理",
    "合伙人",
    "客户经理",
    "人事主管",
    "工程师",
];
pub const ORG_CONTACT_NOTES: &[&str] = &[
    "年会和商务宴请；联系人：行政部",
    "月底统一结账，发票寄公司前台",
    "常订包间招待客户，需提前确认菜单",
    "每季度团建聚餐",
];
