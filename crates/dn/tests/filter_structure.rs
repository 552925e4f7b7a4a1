//! Property test: a `Filter` built from any tree of typed parts with arbitrary
//! (hostile) values parses back, with an independent RFC 4515 parser written here,
//! to exactly that tree. No value can change the filter's structure.

// Test helpers outside #[test] functions unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use credwheel_dn::Filter;
use proptest::prelude::*;

#[derive(Debug, Clone, PartialEq)]
enum Tree {
    Eq(String, String),
    Ge(String, String),
    Present(String),
    And(Vec<Tree>),
    Or(Vec<Tree>),
    Not(Box<Tree>),
}

fn build(t: &Tree) -> Filter {
    match t {
        Tree::Eq(a, v) => Filter::eq(a, v).unwrap(),
        Tree::Ge(a, v) => Filter::ge(a, v).unwrap(),
        Tree::Present(a) => Filter::present(a).unwrap(),
        Tree::And(ts) => Filter::and(ts.iter().map(build)).unwrap(),
        Tree::Or(ts) => Filter::or(ts.iter().map(build)).unwrap(),
        Tree::Not(t) => Filter::not(build(t)),
    }
}

/// A minimal RFC 4515 parser for the forms above.
struct P<'a> {
    b: &'a [u8],
    i: usize,
}

impl P<'_> {
    fn eat(&mut self, c: u8) {
        assert_eq!(self.b.get(self.i), Some(&c), "at {}", self.i);
        self.i += 1;
    }

    fn filter(&mut self) -> Tree {
        self.eat(b'(');
        let t = match self.b[self.i] {
            b'&' | b'|' => {
                let op = self.b[self.i];
                self.i += 1;
                let mut list = Vec::new();
                while self.b[self.i] == b'(' {
                    list.push(self.filter());
                }
                if op == b'&' {
                    Tree::And(list)
                } else {
                    Tree::Or(list)
                }
            }
            b'!' => {
                self.i += 1;
                Tree::Not(Box::new(self.filter()))
            }
            _ => self.item(),
        };
        self.eat(b')');
        t
    }

    fn item(&mut self) -> Tree {
        let start = self.i;
        while self.b[self.i].is_ascii_alphanumeric() || b";-.".contains(&self.b[self.i]) {
            self.i += 1;
        }
        let attr = String::from_utf8(self.b[start..self.i].to_vec()).unwrap();
        let ge = self.b[self.i] == b'>';
        if ge {
            self.i += 1;
        }
        self.eat(b'=');
        if !ge && self.b[self.i..].starts_with(b"*)") {
            self.i += 1;
            return Tree::Present(attr);
        }
        let mut value = Vec::new();
        loop {
            match self.b[self.i] {
                b')' => break,
                b'\\' => {
                    let hex = std::str::from_utf8(&self.b[self.i + 1..self.i + 3]).unwrap();
                    value.push(u8::from_str_radix(hex, 16).unwrap());
                    self.i += 3;
                }
                c => {
                    assert!(!b"*(\0".contains(&c), "unescaped {c:#x}");
                    value.push(c);
                    self.i += 1;
                }
            }
        }
        let value = String::from_utf8(value).unwrap();
        if ge {
            Tree::Ge(attr, value)
        } else {
            Tree::Eq(attr, value)
        }
    }
}

fn attr() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "cn",
        "sAMAccountName",
        "objectClass",
        "2.5.4.3",
        "cn;lang-en",
    ])
    .prop_map(str::to_owned)
}

fn value() -> impl Strategy<Value = String> {
    let c = prop_oneof![
        3 => prop::sample::select(vec!['*', '(', ')', '\\', '\0', '=', '&', '|', '!', 'a', ' ']),
        1 => any::<char>(),
    ];
    prop::collection::vec(c, 0..12).prop_map(String::from_iter)
}

fn tree() -> impl Strategy<Value = Tree> {
    let leaf = prop_oneof![
        (attr(), value()).prop_map(|(a, v)| Tree::Eq(a, v)),
        (attr(), value()).prop_map(|(a, v)| Tree::Ge(a, v)),
        attr().prop_map(Tree::Present),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(Tree::And),
            prop::collection::vec(inner.clone(), 1..4).prop_map(Tree::Or),
            inner.prop_map(|t| Tree::Not(Box::new(t))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn filter_structure_survives_any_value(t in tree()) {
        let text = build(&t).to_string();
        let mut p = P { b: text.as_bytes(), i: 0 };
        let parsed = p.filter();
        prop_assert_eq!(p.i, text.len(), "trailing input in {}", text);
        prop_assert_eq!(parsed, t);
    }
}

#[test]
fn empty_value_is_not_presence() {
    // `(cn=)` is an equality with an empty value, `(cn=*)` is presence; a value
    // of "*" must not turn into the latter.
    assert_eq!(Filter::eq("cn", "*").unwrap().to_string(), r"(cn=\2a)");
    assert_eq!(Filter::eq("cn", "").unwrap().to_string(), "(cn=)");
}
