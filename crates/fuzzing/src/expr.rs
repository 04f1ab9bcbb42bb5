//! DynamoDB's expression language, parsed and evaluated on its own (the `dynamodb` target
//! reaches it too, but through a JSON request that the fuzzer must keep valid first).
//!
//! The input is the expression text. It is parsed as a condition of each kind, as an update
//! and as a projection; what parses is printed back and parsed again (the syntax tree's
//! `Display` promises an expression that parses to the same tree), then evaluated against a
//! fixed item with fixed placeholders `#a #b #l #m #n` and `:s :n :b :l :m :ss :ns :t :z`.

use std::collections::{BTreeSet, HashMap};

use store::table::expr::{self, Ctx, Used, eval};
use store::table::value::{AttrMap, AttrValue, Item, Number};

const KINDS: [&str; 3] = [
    "ConditionExpression",
    "FilterExpression",
    "KeyConditionExpression",
];

pub fn run(data: &[u8]) {
    // Expressions arrive inside JSON strings, which are always UTF-8.
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let ctx = ctx();
    let item = item();
    for kind in KINDS {
        if let Ok(c) = expr::parse_condition(src, kind) {
            let printed = c.to_string();
            let again = expr::parse_condition(&printed, kind);
            assert_eq!(
                again.as_ref().ok(),
                Some(&c),
                "{kind} {src:?} printed as {printed:?} parses differently: {again:?}"
            );
            let mut used = Used::default();
            used.cond(&c);
            let _ = ctx.check(&used);
            let _ = eval::eval_cond(&c, &item, &ctx, kind);
        }
    }
    if let Ok(u) = expr::parse_update(src) {
        let printed = u.to_string();
        let again = expr::parse_update(&printed);
        assert_eq!(
            again.as_ref().ok(),
            Some(&u),
            "update {src:?} printed as {printed:?} parses differently: {again:?}"
        );
        let mut used = Used::default();
        used.update(&u);
        let _ = ctx.check(&used);
        if eval::update_paths(&u, &ctx).is_ok() {
            let mut target = item.clone();
            let _ = eval::apply_update(&u, &mut target, &ctx);
            std::hint::black_box(store::table::value::item_size(&target));
        }
    }
    if let Ok(paths) = expr::parse_projection(src) {
        let printed = expr::ast::projection_to_string(&paths);
        let again = expr::parse_projection(&printed);
        assert_eq!(
            again.as_ref().ok(),
            Some(&paths),
            "projection {src:?} printed as {printed:?} parses differently: {again:?}"
        );
        let resolved: Result<Vec<_>, _> = paths.iter().map(|p| ctx.resolve(p)).collect();
        if let Ok(resolved) = resolved
            && eval::check_overlap(&resolved, "ProjectionExpression").is_ok()
        {
            std::hint::black_box(eval::project(&item, &resolved));
        }
    }
}

fn num(s: &str) -> Number {
    Number::parse(s).unwrap_or_else(|_| Number::zero())
}

fn ctx() -> Ctx {
    let names = [
        ("#a", "a"),
        ("#b", "b.c"),
        ("#l", "l"),
        ("#m", "m"),
        ("#n", "n"),
    ];
    let values = [
        (":s", AttrValue::S("x".into())),
        (":n", AttrValue::N(num("5"))),
        (":b", AttrValue::B(vec![1, 2, 3])),
        (":l", AttrValue::L(vec![AttrValue::S("y".into())])),
        (
            ":m",
            AttrValue::M(AttrMap::from([("k".into(), AttrValue::Bool(true))])),
        ),
        (
            ":ss",
            AttrValue::SS(BTreeSet::from(["a".into(), "z".into()])),
        ),
        (
            ":ns",
            AttrValue::NS(BTreeSet::from([num("1"), num("-7.25")])),
        ),
        (":t", AttrValue::Bool(true)),
        (":z", AttrValue::Null),
    ];
    Ctx {
        names: names
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<HashMap<_, _>>(),
        values: values
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<HashMap<_, _>>(),
    }
}

fn item() -> Item {
    let mut m = Item::new();
    m.insert("pk".into(), AttrValue::S("a".into()));
    m.insert("a".into(), AttrValue::S("abc".into()));
    m.insert(
        "b.c".into(),
        AttrValue::N(num("99999999999999999999999999999999999999")),
    );
    m.insert("n".into(), AttrValue::N(num("-0.000001")));
    m.insert(
        "l".into(),
        AttrValue::L(vec![
            AttrValue::N(num("1")),
            AttrValue::L(vec![AttrValue::S("deep".into())]),
            AttrValue::M(AttrMap::from([("k".into(), AttrValue::Null)])),
        ]),
    );
    m.insert(
        "m".into(),
        AttrValue::M(AttrMap::from([
            ("k".into(), AttrValue::S("v".into())),
            (
                "inner".into(),
                AttrValue::M(AttrMap::from([("z".into(), AttrValue::B(vec![0]))])),
            ),
        ])),
    );
    m.insert(
        "ss".into(),
        AttrValue::SS(BTreeSet::from(["a".into(), "b".into()])),
    );
    m.insert("ns".into(), AttrValue::NS(BTreeSet::from([num("3")])));
    m.insert("bs".into(), AttrValue::BS(BTreeSet::from([vec![9u8]])));
    m.insert("t".into(), AttrValue::Bool(false));
    m
}
