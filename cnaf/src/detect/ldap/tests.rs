//! Unit tests of the LDAP filter injection detector.

use super::*;
use crate::model::{Attack, RequestParts};

fn level(n: u8) -> Paranoia {
    Paranoia::new(n).expect("a level")
}

#[test]
fn filter_injections_are_caught_at_level_1() {
    for v in [
        // closing a parenthesis the value did not open, then filter syntax
        "*)(uid=*))(|(uid=*",
        "admin)(&)",
        "admin*)(&",
        "user)(|",
        "*)(|(mail=*)",
        "jdoe)(description=*",
        "x)(cn>=a)",
        "x)(sn~=smith",
        "val)&(cn=admin",
        "x)!(sn=*",
        "test) ( & ",
        "test)\t(\t|",
        "a))(&(objectClass=*",
        // NUL after such a close
        "admin))\0",
        "admin)\0garbage",
        // an operator right after value characters, or left open
        "*(|(mail=*))",
        "x(|(sn=a",
        "( | (mail=*)",
        "(&(uid=a)(|(cn=b)",
        "*(cn=*)",
        // constant items: the LDAP 1=1
        "(&(cn=root)(!(|(2=1)(pwdHistory=z))))",
        "(|(uid=x)(&))",
        // bare extensible matches with a rule
        "userPassword:2.5.13.17:=secret",
        "cn:dn:=Sales",
        "sn:caseExactMatch:=Smith",
        ":dn:2.4.6.8.10:=Dino",
    ] {
        assert!(detect(v), "{v:?} not caught");
    }
}

#[test]
fn benign_look_alikes_pass_at_level_1() {
    for v in [
        ":-)",
        "great job :-) (really)",
        ":-) (x=1)",
        "(see above)",
        "as noted (see above) the price is = 5",
        "(a+b)*(c)",
        "(1+2)+(3+4)",
        "x=(1)",
        "f(x) = (x+1)*(x-1)",
        "f(x)(y=2)",
        "1) apples 2) pears",
        "1) a-b=c",
        "foo|bar",
        "Hello!World",
        "12:30:45",
        "[docs](https://example.com/a?b=c)",
        "see [here](http://x.io/?q=1&r=(2)) for more",
        "participants (n=42) were (mostly) happy",
        "The results (p<0.05) (n=42) held.",
        "(n=42)",
        "(x = 5)",
        "email@example.com (work)",
        "John Doe <john.doe@example.com>",
        "+1 (555) 123-4567",
        "x := 5",
        "a:b:=c",
        "12:30:=",
        "fe80::1:=x",
        "if (!(c = getc(f)))",
        "while (!(c=getc(f)))",
        "Q&A (&more)",
        "rock & roll (live) | tickets",
        "(!)",
        "wow (!!) nice",
        "*bold* (text)",
        "total = (price * qty)",
        "https://example.com/wiki/Foo_(bar)?x=y",
        "{\"a\":\"(b=c)\"}",
        // regular expressions and editor help
        r"(?P<rel>\([^)]+\))|(?P<prop>[a-z]+)",
        r"[(|)]+",
        r"0+[0-7]{0,2})){3})|(?!.*::)(?:(?!:)|",
        r"or \%( pattern \)  |/\%(|",
        // complete filters, as directory tools send them
        "(&(objectCategory=computer)  (userAccountControl:1.2.840.113556.1.4.803:=8192))",
        "(cn=web)(&(ou=Hosts)(l=Paris))",
        "(objectSid=S-1-5-21-1004336348-1177238915-682003330-512)",
        "(|(uid=*)(cn=*))",
        "(objectClass=*)",
    ] {
        assert!(!detect(v), "{v:?} caught at level 1");
    }
}

#[test]
fn paranoia_levels_add_fragments() {
    // level 2: an operator filter with a wildcard item, a standalone item on a directory
    // attribute, wildcard-only matches, absolute filters, a bare extensible match with any
    // rule, a wildcard closing the filter
    for v in [
        "(uid=admin)",
        "(&)",
        "cn:myRule:=x",
        "admin*)",
        "a*))",
        "(|(uid=*)(cn=*))",
        "(&(objectClass=person)(sn=Sm*))",
        "(objectClass=*)",
    ] {
        assert!(!detect(v), "{v:?} at level 1");
        assert!(!paranoid(v, level(1)), "{v:?} paranoid at level 1");
        assert!(paranoid(v, level(2)), "{v:?} not caught at level 2");
    }
    // level 3: any complete filter
    for v in [
        "(n=42)",
        "see (size=large)",
        "(ou:dn:2.5.13.5:=People)",
        "(!(userAccountControl:1.2.840.113556.1.4.803:=2))",
        "(&(objectCategory=computer)  (userAccountControl:1.2.840.113556.1.4.803:=8192))",
    ] {
        assert!(!detect(v), "{v:?} at level 1");
        assert!(!paranoid(v, level(2)), "{v:?} at level 2");
        assert!(paranoid(v, level(3)), "{v:?} not caught at level 3");
    }
    // level 4: any `)(`, any item left open
    for v in ["(a)(b)", "(cn=foo"] {
        assert!(!paranoid(v, level(3)), "{v:?} at level 3");
        assert!(paranoid(v, level(4)), "{v:?} not caught at level 4");
    }
    // ordinary prose stays clean at level 2
    for v in [
        "as noted (see above) the price is = 5",
        "participants (n = 42) were happy :-)",
        "(a+b)*(c)",
        "x=(1)",
        "Meet me at 5pm (office)",
        "[docs](https://example.com/a?b=c)",
        "## Control characters (*interactive contexts only*)",
        "matches (a.*)",
    ] {
        assert!(!paranoid(v, level(2)), "{v:?} at level 2");
    }
}

#[test]
fn random_filter_syntax_never_panics() {
    let alphabet = b"()()&|!=*:~<>.;a1 \\\0x";
    for v in crate::detect::test_support::random_values(alphabet, 32, 20_000, 0x9e37_79b9_7f4a_7c15)
    {
        let _ = detect(&v);
        let _ = paranoid(&v, Paranoia::MAX);
    }
}

#[test]
fn deep_or_long_input_is_bounded() {
    let deep = "(&".repeat(10_000);
    // judged from the starts within MAX_DEPTH of the end; the others give up there
    assert!(detect(&deep));
    let list = "(|".to_string() + &"(a=b)".repeat(20_000);
    assert!(detect(&list));
    let parens = "((((((((((".repeat(5_000);
    assert!(!detect(&parens));
}

fn form() -> RequestParts {
    RequestParts::new("POST", "/login")
        .header("Host", "app")
        .header("Content-Type", "application/x-www-form-urlencoded")
}

#[test]
fn inspect_blocks_on_prevent_and_not_on_disable() {
    let body = "user=*)(uid=*))(|(uid=*&pass=x";
    let p = crate::detect::test_support::blocks_on_prevent_only(
        Attack::Ldap,
        &form(),
        body,
        "LDAP injection detected in form field user from 203.0.113.9; request blocked",
    );
    // base64 and URL encodings are undone first
    let get = RequestParts::new("GET", "/?q=YWRtaW4pKHwodWlkPSop").header("Host", "app");
    assert!(crate::inspect(&get, b"", &p).has(Attack::Ldap));
}
