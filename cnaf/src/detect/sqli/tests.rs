use super::lexer::Tok;
use super::{detect, paranoid};

#[test]
fn classic_injections() {
    for a in [
        "' OR '1",
        "' or 1=1--",
        "1234 OR 1=1",
        "-1839' or '1'='1",
        "EmptyValue' and 526=527",
        "foo') UNION ALL select NULL --",
        "admin'--",
        "2010-01-01'+sleep(20.to_i)+'",
        "-1 union all select 1,group_concat(user,0x3a,file_priv),3,4 from mysql.user--",
        "(select(0)from(select(sleep(15)))v)",
        "3; DECLARE @c varchar(255); SELECT @c='ping'",
        "1; DROP TABLE users",
        "123) AND 12=12  AND JSON_DEPTH('{}') != 2521",
        "-1134')  OR JSON_EXTRACT('{''aKER'': 9648}', '$.aKER') = 9648*7799 AND ('QlYa' LIKE 'QlYa",
        "/*!UNiOn*/ /*!SeLEct*/ 1,2",
        "1 and sleep(5)",
        "x' waitfor delay '0:0:5'--",
        "1' order by 5--",
        "select name from users where id=1",
        "x'/email--",
        "id'is not-id--",
        "'or(id glob 1)--",
        "1 GROUP BY CONCAT(0x7162766a71,(SELECT (CASE WHEN (5554=5554) THEN 1 ELSE 0 END)))",
        "exec master..xp_cmdshell 'dir'",
        "1 union select table_name from information_schema.tables",
        "concat(0x223e,version(),0x3c)",
        "'1'='1'",
        "; SET @OLD_SQL_MODE=1",
        ") AS total FROM",
        "ALTER TABLE `mass_mails` CHANGE `receivers`",
        "'||true",
        "x' or array[id] is not null--",
        "procedure analyse (",
        "'admin', '1'='1'",
        "from `information_schema`.tables limit",
        "SELECT dDJq WHERE 9896=9896;SELECT (CASE",
        "test' or 1=",
        "lo_get(16400)",
        "IFNULL(",
        "substring(password,1,1)",
        "version()",
        "'{\"b\":2}'::jsonb @> '{\"a\":1}'::jsonb",
        "password::int",
    ] {
        assert!(detect(a), "missed: {a}");
    }
}

#[test]
fn english_with_keywords_passes() {
    for b in [
        "union was a great select",
        "D'or 1st parfume",
        "john or@var.es",
        "DEAR FINN,--I think it would do; copy should reach us second post",
        "1) a-b=c",
        "Please select a file from your computer",
        "select all shoes from nike",
        "import it from `config.yaml`",
        "version 1.2=1.2.0",
        "select shoes from nike",
        "select one option from the list below",
        "exec noun",
        "Tom's and Jerry's",
        "rock 'n' roll or jazz",
        "I'd like to order by phone",
        "Where's the drop table? In the kitchen.",
        "I'll drop table tennis for a while",
        "names such as Tom from Texas",
        "it's 5 o'clock and we're late",
        "O'Reilly",
        "user@example.com",
        "/api/v1/users/123",
        "123<456",
        "fe80::1",
        "count the ways (all of them)",
        "round(ed) corners are nice",
        "1=11",
        "11!=11",
        "Below the rank of species he sometimes recognized taxa of a lower (unnamed) rank ; these have since acquired standardised names such as variety in botany and subspecies in zoology.",
        "Incorrectly constructed SQL statements\nThis form of injection relies on the fact that SQL statements consist of both data used by the SQL statement and commands",
    ] {
        assert!(!detect(b), "false positive: {b}");
    }
}

#[test]
fn postfix_operators_after_breakout() {
    for a in [
        "user'collate nocase--",
        "user'collate`utf8mb4_general_ci`--",
        "user'collate \"C\"--",
        "user'collate utf8mb4_general_ci--",
        "' notnull --",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "user'collate foo--",
        "we collate notes -- weekly",
        "the reader's notnull check",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn declarations_and_dynamic_sql() {
    for a in [
        "declare @b",
        "DECLARE/**/@x",
        "EXECUTE IMMEDIATE \"",
        "execute immediate 'drop table x'",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "I declare @everyone the winner",
        "declare @john the winner",
        "execute immediately",
        "declare independence",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn comments_as_blanks() {
    for a in [
        "SELECT/*avoid-spaces*/password/**/FROM/**/Members",
        "DROP/*comment*/sampletable",
        "1/**/union/**/select/**/1",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "color: red; /* select a colour */ x",
        "see /* the docs */ for more",
        "a/*b*/c",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn json_operators() {
    for a in [
        "OR '{\"a\":2,\"c\":[4,5,{\"f\":7}]}' -> '$.c[2].f' = 7",
        "OR '{\"a\":\"b\"}' ? 'a'",
        "OR '[1,2]' ? '1'",
        "OR '{\"name\":\"asd\"}' ?| array['a','name']",
        "OR '{\"name\":\"asd\"}' ?& array['a','name']",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "cats or dogs ? maybe",
        "a -> b -> c",
        "is it red or 'blue' ?",
        "x->y",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn backslash_before_quote_can_break_out() {
    for a in [
        "\\'or'1",
        "\\\"or\"1",
        "newline\n\\' and 1",
        "admin@juice-sh.op\\' or json (id);",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "it\\'s fine",
        "O\\'Reilly or someone",
        "path C:\\'docs' or more",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn backtick_identifier_context() {
    for a in [
        "` AS `edit_user_id` from",
        "` AS `documentType` FROM",
        ") as User from",
        "x`; drop table users",
        "name` UNION SELECT password FROM users",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "use `ls` to list",
        "run `make`; then test",
        "the `as` keyword from Rust",
        "| `--file F`, `-f F` | the task definition |",
        "`--output json` prints one object",
        "admin`;",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn system_objects() {
    for a in [
        "tempdb",
        "msdb",
        "select pg_sleep",
        "from `information_schema`",
        "from `information_schema`.tables",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "temp db",
        "from `users`",
        "`unclosed backtick é",
        "sleep well",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn pattern_operators_after_breakout() {
    for a in [
        "admin@example.com' and password glob password;",
        "x' or name rlike y--",
        "x' or username like y escape 'x';",
        "'glob 1;",
        "'regexp id;",
        "';print'",
        "'; print @@version",
        ") like (",
        ")like(",
        ") rlike '",
        "'x'!='y",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "parents' and kids like games",
        "it is your parents' and yours",
        "regexp is a tool; use it",
        "the glob 1 pattern",
        "print 'hello'",
        "x = 'print'",
        "escape the ' character",
        "please print this; thanks",
        "(see below) like (this)",
        "'1001'='10",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn mysql_executable_and_hint_comments() {
    for a in [
        "9999 or /*+ optimizer hint */ true",
        "9999 or /* +optimizer hint */ true",
        "x /*!50000select*/ 1",
        "/*!5000select username/*!comment*/",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "/*! normalize.css v8.0.1 | MIT License */",
        "a /* + */ b",
        "/*! */",
        "1 + /* note */ 2",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

fn at_level(n: u8) -> crate::policy::Paranoia {
    crate::policy::Paranoia::new(n).unwrap_or_default()
}

#[test]
fn paranoia_2_fragments() {
    let l2 = at_level(2);
    for a in [
        "sin(",
        "md5(",
        "COS(",
        "Compress(",
        "find_in_set('22', Category )",
        "date(",
        "div(23,-2)",
        "IS NULL",
        "LIKE NULL",
        "in (0,1)",
        "42 like 42",
        "'1' not regexp '2'",
        "something LIKE '",
        "xor 2 <",
        "or 'a' <",
        "|| langCode ==",
        "&&(e===",
        "and '5'orig",
        ";drop",
        ";update users",
        "'alter a",
        "\" ALTER A",
        "CREATE TABLE Persons",
        "exec master.",
        "SET @OLD_SQL_NOTES",
        "SELECT (CASE",
        "x=(select",
        "FROM t WHERE name=\"x\";",
        "FROM termine GROUP BY tag1",
        "HAVING 1=",
        "2 union all",
        ") when 234 then",
        "DROP sampletable;--",
        "OR 1#",
        "DR/**/OP",
        "mysql.db",
        "Northwind",
        "schema_name",
        "nvarchar",
        "4294967296",
        "2.2250738585072011e-308",
        "1.e(ascii)",
        "\\'and",
        "length||(",
        "password?(",
        "6 As\" from",
        "'abc', 0x1a",
        "Xunionselectfrom",
        "RLIKE",
        "<=>",
    ] {
        assert!(paranoid(a, l2), "level 2 missed {a:?}");
        assert!(!detect(a) || paranoid(a, at_level(3)), "{a:?}");
    }
}

#[test]
fn paranoia_2_passes_prose_and_data() {
    let l2 = at_level(2);
    for b in [
        "I'd like to order by phone",
        "the date (today) is fine",
        "time (UTC)",
        "Password (required)",
        "survival is very unlikely (~2% if not in a hospital)",
        "add up to 180 degrees (same color)",
        "and 7 oranges",
        "The uid is not working",
        "printf(foo)",
        "exec (",
        "/select-quote",
        ".select-gws-banana",
        "ThisIsATest`",
        "(groupType:1.2.840.113556.1.4.803:=2147483648)",
        "0x41414141A9FEA9FE",
        "\"1\" sSOUNDS LIKE \"SOUNDS LIKE 1",
        "user@example.com",
        "{\"name\": \"Tom\", \"age\": 42}",
        "https://example.com/a/b?c=d",
        "Price: $12.99 (incl. VAT)",
        "Tom's and Jerry's",
        "rock 'n' roll or jazz",
        "I'll drop table tennis for a while",
        "select all shoes from nike",
        "in case you missed it",
        "see you in (about) an hour",
        "the null hypothesis is not rejected",
        "regexps are hard",
        "xorg.conf",
        "a xor b",
        "100% sure & ready",
        "#1 fan",
        "x--y",
        "hunter2;",
        "abc'123\"xyz",
        "P@ssw0rd!",
        "O'Brien",
        "drop shipping",
        "union jack flag",
        "C# vs Java",
        "AT&T",
        "12 O'Connell St., Apt #4",
        "john.o'reilly+test@example.co.uk",
        "+1 (555) 123-4567",
        "(a+b)*c",
        "I'd like to order 2 items; please deliver by Monday - thanks!",
        "Let's meet @ 5pm; bring snacks & drinks",
        "Where do I find the order history? It's not in my account.",
        "What's 2 + 2 = 4?",
        "Tom's \"special\" recipe (v2)",
        "color: red; font-size: 12px",
        "We're 50% off -- today only!",
        "Is it true that 1 = 1?",
        "email@example.com; other@example.com",
        "ls -- a list of things",
    ] {
        assert!(!paranoid(b, l2), "level 2 flagged {b:?}");
    }
}

#[test]
fn paranoia_3_and_4_fragments() {
    let (l2, l3, l4) = (at_level(2), at_level(3), at_level(4));
    for a in [
        "||",
        "<=>",
        "XOR",
        "RLIKE",
        "in (0,x)",
        "length||(",
        "password?(",
        "ORder by",
        "Execute(",
        "parents' or yours?",
        "6 As\" from",
        "'abc', 0x1a",
        "'', '', '', 13",
        "(((((())))))",
        "!@#$%^&*()-=",
        "'1001'='10",
        "\"2562*23",
        "`bla`",
        "select 0x616263",
        "Xunionselectfrom",
        "case when x",
    ] {
        assert!(paranoid(a, l3), "level 3 missed {a:?}");
        assert!(paranoid(a, l4), "level 4 missed {a:?}");
    }
    for a in [
        "time (",
        "execute php",
        "!@#$%^",
        "foo....",
        "'bla'",
        "x or",
    ] {
        assert!(!paranoid(a, l3) || detect(a), "level 3 flagged {a:?}");
        assert!(paranoid(a, l4), "level 4 missed {a:?}");
    }
    assert!(!paranoid("||", l2));
}

#[test]
fn paranoia_3_passes_prose_and_data() {
    let l3 = at_level(3);
    for b in [
        "D'or 1st parfume",
        "exec noun",
        "Left (WA, RR), following wood edge south",
        "One quarter (24%) of people",
        "maximise space (ideal for art)",
        "the logarithm of the likelihood (the \"log likelihood\")",
        "Find your solution here -> link",
        "aGVsbG93b3JsZA==",
        "orderby",
        "\"aaaaaaaaaaaaaaaa\"",
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>",
        "{\"alg\":\"HS256\",\"typ\":\"JWT\"}",
        "[\"account\",\"sharing\"]",
        "{'key':['value1','value2']}",
        "Schauen Sie sich diese Zahl an: 1'000'000?",
        "pay=/Business and",
        "As evidence from the following",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "2024-01-01T10:00:00Z",
        "\"2014-11-01\"",
        "O'Brien",
        "Tom's \"special\" recipe (v2)",
    ] {
        assert!(!paranoid(b, l3), "level 3 flagged {b:?}");
    }
    for b in [
        "O'Brien",
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    ] {
        assert!(!paranoid(b, at_level(4)), "level 4 flagged {b:?}");
    }
}

#[test]
fn lone_call_of_a_rare_sql_function() {
    for a in [
        "COS(",
        "sin (",
        "Uncompress (",
        "sysdate(",
        "RTRIM(",
        "pow(2,3)",
        "ln (",
        "PI()",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "time (",
        "Oct (2024)",
        "date(",
        "values (",
        "log(",
        "sin is a word",
        "cos x (y)",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn logic_then_a_call_closed_by_a_statement_end() {
    for a in [
        "admin@example.com\\' and( likelihood (id,.0));'",
        "admin@example.com\\' or glob (id,id);",
        "x' or regexp('a', name);",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "Tom's and (Jerry's) friends;",
        "the glob (pattern) syntax",
        "it's (or (maybe) not);",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn whole_data_statements() {
    for a in [
        "DELETE FROM users;--",
        "delete from users where id=1",
        "UPDATE users SET admin=1",
        "update `users` set role='admin' where 1=1",
        "INSERT INTO users VALUES (1)",
        "insert into t (name, pass) select",
        "1' and starts_with(password) and 'true",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "delete from my list please",
        "please update your profile settings",
        "insert into the slot",
        "Delete from cart; then checkout",
        "update the set = 5 rule",
        "it's fine and dandy and 'true",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn worded_tautologies_and_from_where() {
    for a in [
        "42 like 42",
        "1 is not 2",
        "'1' not regexp '2'",
        "'a' rlike 'a'",
        "FROM ack_variable WHERE name=\"cron_last\";",
        "from users where id = 1",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "1 is not 1",
        "it is what it is",
        "5 is 6",
        "from home where it is warm",
        "from Texas where people like rodeos",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn paranoia_3_quote_then_operator() {
    let l3 = at_level(3);
    for a in [
        "' or xyz-",
        "' or 3,4,2@!",
        "' or homer 9",
        "' * from = 1 or '9",
        "\"` * 12344",
    ] {
        assert!(paranoid(a, l3), "level 3 missed {a:?}");
    }
    for b in [
        "my parents' or grandparents' house",
        "the kids' * stars",
        "D'or 1st parfume",
    ] {
        assert!(!paranoid(b, l3), "level 3 flagged {b:?}");
    }
}

#[test]
fn paranoia_3_hex_literals() {
    let l3 = at_level(3);
    for a in ["\\0xf00dsdfdsa", "x = 0x616263 or 1"] {
        assert!(paranoid(a, l3), "level 3 missed {a:?}");
    }
    for b in ["0x41414141A9FEA9FE", "http:0xABCDEF", "0xFFFFFF"] {
        assert!(!paranoid(b, l3), "level 3 flagged {b:?}");
    }
}

#[test]
fn paranoid_rules_take_any_utf8() {
    for v in [
        "/嘍Set-cookie:crlf=injection",
        "é'ü",
        "嘍",
        "'嘍' or 1",
        "1.é",
        "0x嘍",
        "\\'嘍",
    ] {
        for n in 1..=4 {
            let _ = paranoid(v, at_level(n));
        }
        let _ = detect(v);
    }
}

#[test]
fn every_rule_takes_arbitrary_text() {
    // a fixed pseudo-random walk over SQL punctuation, keywords and multi-byte characters: no
    // rule may slice inside a character or index past the end
    const PIECES: &[&str] = &[
        "'", "\"", "`", "\\", "(", ")", ";", "--", "#", "/*", "*/", "/*!", "=", "<", ">", "!", "|",
        "&", ",", ".", " ", "0x", "1", "e", "1.e", "or", "and", "select", "union", "from", "where",
        "like", "is", "null", "in", "as", "exec", "sin", "date", "é", "嘍", "\u{a0}", "@", "@@",
        ":", "?", "-", "+", "*", "%",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..3000 {
        let mut v = String::new();
        for _ in 0..(state % 9 + 1) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            v.push_str(PIECES[(state % PIECES.len() as u64) as usize]);
        }
        let _ = detect(&v);
        for n in 2..=4 {
            let _ = paranoid(&v, at_level(n));
        }
    }
}

#[test]
fn prose_maths_joined_by_and_passes() {
    for b in [
        "If a is 2 and b is 4, then a + b = 6 and a * b = 8.",
        "a<b and b<c, hence a<c",
        "3 < 7 and 7 > 3",
        "tan(45°) = 1 and sin(90°) = 1",
        "3^2 = 9 and 3**2 == 9 in Ruby",
        "price >= 10 and stock > 0, otherwise hide it",
    ] {
        assert!(!detect(b), "flagged: {b}");
    }
    // a condition added to the data, or an attack function after a spelled-out comparison
    for a in [
        "1 and 1=1",
        "5 or x=x",
        "1) and (2>1",
        "a=1 and sleep(5)",
        "x<y and (select 1)",
        "pay=AND 2771=1709)",
    ] {
        assert!(detect(a), "missed: {a}");
    }
}

#[test]
fn keyword_mail_quoted_words_and_elisions_pass() {
    for b in [
        "union@example.org",
        "drop@mail.example.co.uk",
        "Click 'Exec' twice.",
        "The 'Execute' button is grey.",
        "Tap 'Grant permission' when asked.",
        "Pick 'Union' or 'Subtract' in the shape builder.",
        "'Exec' stands for executive.",
        "L'Union fait la force",
        "Nell'union c'è forza.",
        "qu'union ou pas, on verra",
        "He's 5'9\" and 70 kg -- too light?",
        "Tr0ub'le\"!#@",
    ] {
        assert!(!detect(b), "flagged: {b}");
    }
    for a in [
        "select@@version",
        "x'union select 1,2",
        "l'union select password from users",
        "'UNION A",
        "' union/",
        "\" UNION ALL",
        "' exec master..xp_cmdshell 'dir'",
        "'; grant all on db to x",
        "' = # '",
        "x'!1#",
        "admin' or 1 --",
    ] {
        assert!(detect(a), "missed: {a}");
    }
}

#[test]
fn json_documents_are_judged_by_their_strings() {
    for b in [
        r#"{"exec":{"name":"Aoife O'Neill","role":"CTO"}}"#,
        r#"{"or":[{"color":"red"},{"color":"blue"}],"and":[{"size":9}]}"#,
        r#"[{"select":"all"},{"union":"local 12"}]"#,
    ] {
        assert!(!detect(b), "flagged: {b}");
    }
    for a in [
        r#"{"id":"1' or '1'='1"}"#,
        r#"{ "' union/":"foo" }"#,
        r#"[{"q":"1 union select password from users"}]"#,
        // not JSON: judged as text
        r#"{"id":1 union select 1,2}"#,
    ] {
        assert!(detect(a), "missed: {a}");
    }
}

#[test]
fn paranoia_2_opening_quote_probes() {
    let l2 = at_level(2);
    for a in [
        "' or abc!",
        "' xor zzz-",
        "' or 5,6,7@!",
        "'2040'='20",
        "`>42",
        "` < 0) AND `",
        "', 3, 4",
        "\":42",
        "\":[\"1",
    ] {
        assert!(paranoid(a, l2), "level 2 missed: {a}");
    }
    for b in [
        "my parents' or yours!",
        "'Delete' removes it, 'Archive' keeps it",
        "Hit 'Truncate' to shorten the text.",
        "Click 'Select all' then 'Copy'.",
        "The \"Update\" button is grey.",
        "Tap 'Insert' > 'Image' and pick a photo.",
        "L'union fait la force",
        "'90s music, or 80s?",
        "'16/17 season was great",
        "', said she",
        "\": is how a JSON key ends",
        "'Apples', 'pears', and more",
        r#"{"drop":{"where":"porch","slot":"9-12"}}"#,
        r#"{"select":["id","name"],"order":"name","limit":20}"#,
    ] {
        assert!(!paranoid(b, l2), "level 2 flagged: {b}");
    }
}

#[test]
fn paranoia_2_worded_comparisons_in_prose() {
    let l2 = at_level(2);
    for a in [
        "x 1 is not 2",
        "and 42 like 42",
        "a 'a' like '%'",
        "name 'ab' not like 'cd'",
    ] {
        assert!(paranoid(a, l2), "level 2 missed: {a}");
    }
    for b in ["The average of 4, 8 and 12 is 8.", "Room 5 is 3 floors up"] {
        assert!(!paranoid(b, l2), "level 2 flagged: {b}");
    }
}

#[test]
fn paranoia_2_lone_call_openings() {
    let l2 = at_level(2);
    for a in [
        "hour. (",
        "md5 (",
        "IN (",
        "week. (",
        "Execute(",
        "' * from x",
    ] {
        assert!(paranoid(a, l2), "level 2 missed: {a}");
    }
    for b in [
        "exec (",
        "hour (",
        "exec chair",
        "group by",
        "Order by",
        "see the notes (",
        "time flies (",
        "Call me (",
        "hour",
    ] {
        assert!(!paranoid(b, l2), "level 2 flagged: {b}");
    }
}

#[test]
fn statement_then_comment_alone() {
    for a in [
        "DROP users;--",
        "truncate `logs`; #",
        "OR 1#",
        "and 'x'-- -",
    ] {
        assert!(detect(a), "missed: {a}");
    }
    for b in [
        "drop it;",
        "Drop off; thanks",
        "or 1 more",
        "#1 or #2",
        "Or 2 # of them",
        "drop me a line; -- Sam",
    ] {
        assert!(!detect(b), "flagged: {b}");
    }
}

#[test]
fn comment_splitting_a_keyword() {
    for a in [
        "DR/**/OP/*x*/users",
        "1 UN/**/ION SEL/**/ECT 1",
        "sel/*ab*/ect",
    ] {
        assert!(detect(a), "missed: {a}");
    }
    for b in [
        "see src/*.rs and lib/*.rs",
        "a/*b*/c",
        "foo/* note */bar",
        "/* fine */",
    ] {
        assert!(!detect(b), "flagged: {b}");
    }
}

#[test]
fn paranoia_2_judges_constant_comparisons_by_their_truth() {
    let (l2, l3) = (at_level(2), at_level(3));
    // always true: the bypass a tautology is for
    for a in [
        "1 is not 2",
        "'1' not regexp '2'",
        "42 like 42",
        "'a'<=>'a'",
    ] {
        assert!(paranoid(a, l2), "missed {a:?}");
    }
    // always false and nothing around it: no row filter changes
    for b in ["1 is not 1", "'1' not regexp '1'", "5 like 6", "'x' = 'y'"] {
        assert!(!paranoid(b, l2), "flagged {b:?}");
        assert!(paranoid(b, l3), "level 3 missed {b:?}");
    }
    // logic around a contradiction is the blind probe's false branch (a worded one after a
    // number reads as prose at level 2: `8 and 12 is 8`)
    for a in ["' and '1' not regexp '1", "'{\"a\":2}' < '$.a' = 7"] {
        assert!(paranoid(a, l2), "missed {a:?}");
    }
}

#[test]
fn paranoia_2_reads_sql_shapes_not_their_words() {
    let l2 = at_level(2);
    for a in [
        "select * from users",
        "select * from db.users u;",
        "select * from users where",
        "select *",
        "select 'a',",
        "select 'a' from dual",
        "1 union",
        "' union",
        "9 union select 1",
        "sqrt(",
        "max(id)",
        "1 and sqrt(16)=4",
        "=sum(password)",
        "count(*)",
    ] {
        assert!(paranoid(a, l2), "level 2 missed: {a}");
    }
    for b in [
        // English after SELECT *, a selected string or a union
        "Select * from the menu? No, just the soup please :)",
        "Select * from the list below",
        "Select 'Settings' > 'Account' > 'Update payment method'.",
        "Where's the 'Union Jack' cushion from your Instagram post?",
        "C'est l'union de deux familles.",
        "123 Union Street, Aberdeen AB11 6BH",
        "Meet at 5 Union Square",
        // math, spreadsheets and code calling names SQL shares
        "log(100) = 2",
        "sqrt(16) = 4, right?",
        "sin(30°) = 0.5 and cos(60°) = 0.5",
        "=SUM(A1:A10)/2",
        "=MAX($B$2:$B$9)",
        "NullPointerException at com.example.shop.Cart.total(Cart.java:42)",
        "use Math.max(a, b) here",
        "int max(int a, int b) { return a > b ? a : b; }",
        "def total(items):",
    ] {
        assert!(!paranoid(b, l2), "level 2 flagged: {b}");
    }
}

#[test]
fn asides_after_niladic_and_math_names_pass() {
    // a parenthesis after a word that names a niladic SQL function, or arithmetic inside
    // `exp`/`floor`, is an aside or a formula
    for b in [
        "* Raise the minimum toolkit version (see notes)",
        "release the schema (draft 3) to reviewers",
        "the helper function (do_frob) in lib/frob.c",
        "rebuild the search index (weekly job)",
        "check the user (uid 0) before dropping rights",
        "growth is exp(k*t) for small t",
        "round down with floor(n/2) first",
        "f(t) := \\exp(-a t) \\cos(t)",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
    for a in [
        "1 and version()",
        "' union select user(),database()--",
        "and exp(~(select * from (select user())x))",
        "1 and (select 1 from (select count(*),concat(version(),floor(rand(0)*2))x from information_schema.tables group by x)a)",
        "function()",
        "1' and database ()=1--",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
}

#[test]
fn in_and_is_need_their_sql_operands() {
    // `IN` takes a parenthesised list, `IS` a literal or NULL/TRUE/FALSE/NOT: with an English
    // word after them, they are English
    for b in [
        "* Do not mix tabs and spaces in makefile.",
        "set 'Verbose' to 'Yes' or 'No' in the config",
        "warn if -q or -s is given",
        "use `--fast` and `--small` in `pack` mode",
        "keep x and y in sync",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
    for a in [
        "' or 'a' in ('a')--",
        "1 and 1 in (select 1)",
        "x' or id is not null--",
        "id'is not-id--",
        "' or 1 in/**/(1)--",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
}

#[test]
fn comparison_continued_by_prose_passes() {
    // a word, a parenthesis or a new sentence right after a comparison continues the text
    for b in [
        "and count != 0 at step 12",
        "build with DEBUG=1 to trace",
        "needs libfoo >= 2.4 (see bug 77).",
        "enabled and LIMIT_X > 0. Otherwise nothing",
        "keep old and new == 3 times a day",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
    for a in [
        "1 and 1=1",
        "1' and 1=1--",
        "1 and 1=1 union select 1",
        "x' or a=a or 'b",
        "1 or 2>1 limit 1",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
}

#[test]
fn quoted_options_in_prose_pass() {
    // a quote opening an option or a directive (`'--flag'`, `"-x"`, `"#include x"`) is no
    // break-out followed by a comment
    for b in [
        "* Add '--with-docs' to build the manual",
        "pass \"-v\" or \"--verbose\" for details",
        "guard it with \"#ifndef FOO_H\" as usual",
        "the \"--prefix=/opt\" switch",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
    for a in [
        "admin'--",
        "admin' --",
        "x'#",
        "'-- -",
        "' or 1=1--",
        "'-1' or 1=1--",
        "x'/email--",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
}

#[test]
fn paranoia_2_regexp_the_noun_passes() {
    let l2 = at_level(2);
    for b in [
        "* lib/scan.c: tighten the regexp for tags",
        "Fix regexp.",
        "the parser crashes if the regexp is empty",
        "use a regexp instead of globbing",
    ] {
        assert!(!paranoid(b, l2), "flagged {b:?}");
    }
    for a in [
        "REGEXP",
        "not regexp",
        "name regexp '^a'",
        "1 regexp 1",
        "x regexp (select 1)",
        "x regexp binary 'A'",
        "` REGEXP ",
        "RLIKE",
    ] {
        assert!(paranoid(a, l2), "missed {a:?}");
    }
}

#[test]
fn paranoia_2_statement_words_in_sentences_pass() {
    // a data or schema statement word that goes on as English, or is part of a compound name
    let l2 = at_level(2);
    for b in [
        "tidy the docs; update libfoo to 2.1 and rebuild",
        "fixed the typo; update and reformat the table",
        "see the notes; alter the paths: as needed",
        "Revert \"Create Makefile, move tests\"",
        "new helper \"drop-privs\" to shed root",
        "the `Delete` button asks first",
    ] {
        assert!(!paranoid(b, l2), "flagged {b:?}");
    }
    for a in [
        ";update users",
        ";drop",
        "; update t set a=1",
        "; delete from t",
        "'alter a",
        "\" ALTER A",
        "' alter/",
        ";truncate[xx",
        "x; drop table users--",
        "1; insert into t values (1)",
    ] {
        assert!(paranoid(a, l2), "missed {a:?}");
    }
}

#[test]
fn paranoia_2_prose_parentheses_after_function_names_pass() {
    // plural markers, manual page sections and English asides after a function's name; an
    // empty `select()` is C's and Python's system call; `and 64-bit` is a quantity
    let l2 = at_level(2);
    for b in [
        "check the field(s) of the header",
        "see crypt(3) and sha2(5) for details",
        "rename it from compress (older systems lack it)",
        "wait on poll()/select() first",
        "and 32-bit builds too",
    ] {
        assert!(!paranoid(b, l2), "flagged {b:?}");
    }
    for a in [
        "md5(",
        "sin (",
        "compress(x)",
        "sleep(5)",
        "ascii(1)",
        "concat(a, b)",
        "compress (select 1)",
        "select (case",
        "or 1-",
        "and 1-sleep(5)",
    ] {
        assert!(paranoid(a, l2), "missed {a:?}");
    }
}

#[test]
fn quoted_terms_arrows_and_sentence_ends_pass() {
    // a short term quoted mid-sentence (`the '+' key`), an arrow, a name in back quotes ending
    // a sentence
    for b in [
        "* switch 'Mode' to 'On' or 'Off' in /etc/foo.conf",
        "* menu: the '+' key now zooms in",
        "use the \"&&\" operator for that",
        "licence: MIT *or* BSD, not \"and\". Thanks",
        "- old-or-new-name => shiny-name",
        "clone it and work on a branch from `main`.",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
    for a in [
        "admin' or '1'='1",
        "x' or 'x'='x",
        "1' and 'a'='a",
        "' or 1 in/**/(1)--",
        "from `db`.`users` limit 1",
        "x' or 1>=1--",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
}

#[test]
fn paranoia_2_print_exec_and_is_null_in_sentences_pass() {
    let l2 = at_level(2);
    for b in [
        "\"\"\"Print the frame list.\"\"\"",
        "redirect with `exec 3>&1' first",
        "assert the node is not null before use",
        "fails when the list is null. Then it stops",
        "* src/c.lang: fixed regexp token (see notes)",
    ] {
        assert!(!paranoid(b, l2), "flagged {b:?}");
    }
    for a in [
        "'print @@version",
        ";print 'x'",
        "IS NULL",
        "and x is null",
        "1 rlike sleep(5)",
        "1;exec master..xp_cmdshell 'dir'",
    ] {
        assert!(paranoid(a, l2), "missed {a:?}");
    }
}

#[test]
fn issue_references_and_method_calls_pass() {
    // `(ITS#12)`, `(#5)` cite a ticket (a SQL `#` would comment out the closing parenthesis);
    // `obj.field()` is a method of an object
    for b in [
        "fixed the parser: requires unsigned char (BUG#1234)",
        "bump the schema version (#88)",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
    let l2 = at_level(2);
    for b in [
        "- turn it off by default(GH#41)",
        "- new `cfg.field()` helper",
        "o a typo in Strings.concat()'s docs",
    ] {
        assert!(!paranoid(b, l2), "flagged {b:?}");
    }
    for a in [
        "1 and char(#\n65)=1",
        "sleep(#1\n5)",
        "ascii(substr(x,1,1))",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for a in [
        "dbms_lock.sleep(5)",
        "x.ascii(1)",
        "md5(",
        "default(x)",
        "sys.fn_varbintohexstr(",
    ] {
        assert!(paranoid(a, l2), "missed {a:?}");
    }
}

/// `paranoid::STATEMENT_WORDS` gates the level-2 quote rules: each word the lexer reads as a
/// statement, `SELECT` or `UNION` must be in it (a word missing there would skip those rules).
/// The candidates are every quoted word in the lexer's source, so a new match arm is covered.
#[test]
fn statement_words_cover_the_lexers_statement_tokens() {
    let source = include_str!("lexer.rs");
    let mut toks = Vec::new();
    let mut checked = 0;
    for w in source.split('"').skip(1).step_by(2) {
        if w.is_empty() || !w.bytes().all(|c| c.is_ascii_lowercase() || c == b'_') {
            continue;
        }
        super::lexer::tokenize(w, None, &mut toks);
        if matches!(toks.as_slice(), [Tok::Stmt(_) | Tok::Select | Tok::Union]) {
            checked += 1;
            assert!(
                super::paranoid::statement_word(w),
                "{w} is missing in STATEMENT_WORDS"
            );
        }
    }
    assert!(
        checked >= 18,
        "only {checked} statement words found in lexer.rs"
    );
}
