//! The inner half of the demo: runs inside the demo's private namespaces (see `mod.rs`) and
//! walks the seed's journey in its order: the console, the rules, the transform, the service,
//! the audits.

use super::api::{self, Console};
use super::task::{self, Running};
use super::{dns, web};
use crate::util::{root, target_dir};
use anyhow::{bail, Context, Result};
use protect::cnaf_policy::CnafPolicy;
use serde_json::Value;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The demo's name server, written into the sample's `resolv.conf`.
pub const NAMESERVER: &str = "127.0.0.53";
/// Where yahoo.com and google.com point inside the demo.
const INTERNET: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 80);
const CONSOLE_LISTEN: &str = "127.0.0.1:8083";
const SEED_SQLI: &str =
    r#"{"-1+union+all+select+1,group_concat(user,0x3a,file_priv),3,4+from+mysql.user--"}"#;
/// How long the service may take to answer on the CNAF port.
const SERVICE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the seed's audits may take to reach the console.
const AUDIT_TIMEOUT: Duration = Duration::from_secs(30);

fn step(text: &str) {
    println!("\n==> {text}");
}

/// A binary of this build (`cargo build --workspace --bins` in the outer half).
fn bin(name: &str) -> PathBuf {
    target_dir().join("debug").join(name)
}

fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn random_password() -> Result<String> {
    let mut bytes = [0u8; 18];
    let mut f = std::fs::File::open("/dev/urandom").context("opening /dev/urandom")?;
    std::io::Read::read_exact(&mut f, &mut bytes).context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A credential as printed: its first characters only.
fn masked(token: &str) -> String {
    format!("{}...", token.chars().take(8).collect::<String>())
}

/// A container's environment as `NAME=value` pairs, the credential masked.
fn shown_env(def: &Value) -> String {
    def["environment"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            let name = v["name"].as_str().unwrap_or("?");
            let value = v["value"].as_str().unwrap_or("");
            let value = if name == "DEFENDER_TOKEN" {
                masked(value)
            } else {
                value.to_string()
            };
            format!("\n    {name}={value}")
        })
        .collect()
}

pub fn run(dir: &Path) -> Result<()> {
    let started = Instant::now();
    dns::start(SocketAddr::new(NAMESERVER.parse()?, 53), INTERNET)?;
    web::start(SocketAddr::new(INTERNET.into(), 80), "the internet")?;
    let sample = read_json(&root().join("examples/fargate-task.json"))?;
    let family = sample["family"]
        .as_str()
        .context("examples/fargate-task.json has no family")?
        .to_string();
    let app_name = sample["containerDefinitions"][0]["name"]
        .as_str()
        .context("examples/fargate-task.json has no container name")?
        .to_string();

    step("1. Starting the console on its defaults (local, embedded store)");
    let admin_password = random_password()?;
    let console_log =
        std::fs::File::create(dir.join("console.log")).context("creating console.log")?;
    let _console = Running(
        Command::new(bin("lambda-console"))
            .args(["serve", "--listen", CONSOLE_LISTEN, "--data-dir"])
            .arg(dir.join("console"))
            .env("CONSOLE_ADMIN_USER", "admin")
            .env("CONSOLE_ADMIN_PASSWORD", &admin_password)
            .env_remove("CONSOLE_DEFENDER_IMAGE")
            .stdout(Stdio::null())
            .stderr(console_log)
            .spawn()
            .context("starting lambda-console")?,
    );
    let base = format!("http://{CONSOLE_LISTEN}");
    api::wait_ready(&base, Duration::from_secs(30))?;
    let admin = Console::login(&base, "admin", &admin_password)?;
    println!("console at {base}; logged in as admin");

    step("2. Defining the policy (Defend > Runtime > App Embedded Policy; Defend > Firewalls > CNAF for Fargate)");
    let saved = admin.put_runtime_policy(&read_json(&root().join("examples/policy.json"))?)?;
    for rule in saved["rules"].as_array().into_iter().flatten() {
        println!(
            "runtime rule \"{}\" (revision {}): containers {}; processes {}, denied {}; DNS {}, denied {}",
            rule["name"].as_str().unwrap_or("?"),
            saved["revision"],
            rule["scope"]["containers"],
            rule["processes"]["effect"].as_str().unwrap_or("?"),
            rule["processes"]["denied"],
            rule["dns"]["effect"].as_str().unwrap_or("?"),
            rule["dns"]["denied"]
        );
    }
    let saved = admin.put_cnaf_policy(&read_json(&root().join("examples/cnaf-policy.json"))?)?;
    let cnaf = CnafPolicy::from_value(saved).context("reading the saved CNAF policy")?;
    let rule = cnaf.rule_for_task(&family).with_context(|| {
        format!("examples/cnaf-policy.json has no enabled CNAF rule for task family {family}")
    })?;
    let sqli = rule.protections.get("sqli").map_or("?", |e| e.as_str());
    println!(
        "CNAF rule \"{}\" (revision {}) for task family {family}: external port {} -> app port {}; SQL injection: {sqli}",
        rule.name, cnaf.revision, rule.external_port, rule.app_port
    );

    step("3. Embedding the Fargate Defender (the Jenkins example's API call, as written)");
    let pipeline_password = random_password()?;
    admin.add_user("jenkins", &pipeline_password, "defender-manager")?;
    println!(
        "curl -u jenkins:*** -X POST '{base}/api/v1/defenders/fargate.json?consoleaddr={base}' \\\n  \
         -H 'Content-Type: application/json' --data-binary @examples/fargate-task.json"
    );
    let protected = api::transform_basic(&base, &base, "jenkins", &pipeline_password, &sample)?;
    for w in &protected.warnings {
        println!("Warning: {w}");
    }
    let task = &protected.task;
    let app = task::container(task, &app_name)?;
    println!(
        "{app_name}: entryPoint {}\n{app_name}: command {}\n{app_name}: environment{}",
        app["entryPoint"],
        app.get("command").unwrap_or(&Value::Null),
        shown_env(app)
    );
    let token = task::env(app, "DEFENDER_TOKEN").with_context(|| {
        format!("the protected task gives {app_name} no DEFENDER_TOKEN: the console mints one when no tokenSecretArn is passed")
    })?;
    println!(
        "credential: DEFENDER_TOKEN={} in plain environment, minted by the transform (see the Warning)",
        masked(token)
    );
    let rule_listen = format!("0.0.0.0:{}", rule.external_port);
    match (
        task::env(app, "DEFENDER_CNAF"),
        task::env(app, "DEFENDER_CNAF_LISTEN"),
    ) {
        (Some("console"), None) => println!(
            "CNAF: DEFENDER_CNAF=console: the defender takes its ports from the console's CNAF \
             rule"
        ),
        (Some("console"), Some(listen)) if listen == rule_listen => println!(
            "CNAF: DEFENDER_CNAF=console, and the transform mapped the console rule's port \
             ({listen}); the defender follows the console's CNAF rule live"
        ),
        (cnaf, listen) => bail!(
            "the protected task gives {app_name} DEFENDER_CNAF={cnaf:?} and \
             DEFENDER_CNAF_LISTEN={listen:?}; the transform should mark it DEFENDER_CNAF=console \
             with the console rule's port {rule_listen}"
        ),
    }

    step("4. Starting the service: the defender installer, then the protected sample container");
    let volume = dir.join("volume-defender");
    task::run_installer(task, &volume, &bin("defender"))?;
    let waits = app["dependsOn"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|d| d["containerName"] == "defender" && d["condition"] == "SUCCESS");
    if !waits {
        bail!("the protected task does not make {app_name} wait for the defender container (dependsOn defender SUCCESS)");
    }
    println!("defender container: exited 0, so {app_name} starts (dependsOn defender SUCCESS)");
    let image = task::image_dir(dir, &app_name)?;
    task::write_script(&image.join("entry.sh"), ENTRY_SH)?;
    let me = std::env::current_exe().context("finding the xtask executable")?;
    task::write_script(
        &image.join("httpd-foreground"),
        &format!(
            "#!/bin/sh\nexec '{}' demo-web 127.0.0.1:80 'It works!'\n",
            me.display()
        ),
    )?;
    let mut service = task::start(app, &volume, dir, &image)?;
    let url = format!("http://127.0.0.1:{}/", rule.external_port);
    wait_answering(&url, SERVICE_TIMEOUT)?;
    println!(
        "service up: {url} answers through CNAF (port {} from the console's rule \"{}\", app port {})",
        rule.external_port, rule.name, rule.app_port
    );

    step("5. Testing the task: the seed's SQL injection against the CNAF port");
    let (code, _) = http("GET", &url, None)?;
    println!("curl {url}  -> {code} (a clean request, forwarded to the app)");
    let (code, body) = http("POST", &url, Some(SEED_SQLI))?;
    println!("curl -X POST -d '{SEED_SQLI}' {url}  -> {code}");
    println!("  block page: {}", block_page_summary(&body));

    step("Audits, as the console returns them (Monitor > Events)");
    let check = |m: &str| -> [bool; 3] {
        [
            m.contains("mkdir launched from")
                && m.ends_with(
                    "and is explicitly blocked in the runtime rule. Full command: mkdir test",
                ),
            m == "DNS resolution of suspicious name yahoo.com",
            m.starts_with("SQL injection detected") && m.ends_with("request blocked"),
        ]
    };
    const WANTED: [&str; 3] = [
        "the mkdir block",
        "the yahoo.com DNS audit",
        "the SQL injection block",
    ];
    let deadline = Instant::now() + AUDIT_TIMEOUT;
    let (runtime, firewall, found) = loop {
        let runtime = admin.audits(false)?;
        let firewall = admin.audits(true)?;
        let mut found = [false; 3];
        for a in runtime.iter().chain(firewall.iter()) {
            for (f, hit) in found.iter_mut().zip(check(&a.message)) {
                *f |= hit;
            }
        }
        if found.iter().all(|f| *f) || Instant::now() > deadline {
            break (runtime, firewall, found);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    println!("App Embedded audits:");
    for a in &runtime {
        println!(
            "  [{:?}/{:?}] {}: {}",
            a.kind, a.effect, a.container, a.message
        );
    }
    println!("CNAF for App Embedded audits:");
    for a in &firewall {
        println!(
            "  [{:?}/{:?}] {}: {}",
            a.kind, a.effect, a.container, a.message
        );
    }
    for d in admin.defenders()? {
        println!(
            "defender seen by the console: {}/{} ({}), {} audits received, using the task's DEFENDER_TOKEN",
            d.task, d.container, d.image, d.audits_received
        );
    }
    let missing: Vec<&str> = WANTED
        .iter()
        .zip(found)
        .filter(|(_, f)| !f)
        .map(|(name, _)| *name)
        .collect();

    step("Stopping the service");
    let status = task::stop(&mut service.0)?;
    println!("{app_name}: exited with {status}");
    if !missing.is_empty() {
        bail!(
            "after {AUDIT_TIMEOUT:?} the console is missing {} (the console's log: {})",
            missing.join(", "),
            dir.join("console.log").display()
        );
    }
    println!(
        "\ndemo: OK: the seed's audits are in the console ({:.1} s after the build)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The sample image's entrypoint: the seed's `entry.sh` (mkdir, then outbound requests to
/// yahoo.com and google.com), ending in the web server of the seed's CNAF variant (httpd:2.4 on
/// port 80) where the seed's sample sleeps.
const ENTRY_SH: &str = r#"#!/bin/sh
echo "entry.sh: mkdir test"
mkdir test || echo "entry.sh: mkdir was refused"
echo "entry.sh: wget http://yahoo.com/"
wget -q -T 5 -t 1 -O /dev/null http://yahoo.com/ || echo "entry.sh: wget yahoo.com failed"
echo "entry.sh: wget http://google.com/"
wget -q -T 5 -t 1 -O /dev/null http://google.com/ && echo "entry.sh: google.com answered"
echo "entry.sh: serving HTTP on port 80 (httpd-foreground)"
exec httpd-foreground
"#;

/// The block page in a line: its title and the request id it names.
fn block_page_summary(body: &str) -> String {
    let between = |open: &str, close: &str| {
        body.split_once(open)
            .and_then(|(_, rest)| rest.split_once(close))
            .map(|(inner, _)| inner.trim().to_string())
    };
    let title = between("<title>", "</title>").unwrap_or_else(|| "(no title)".into());
    match body
        .split_once("Request ID:")
        .and_then(|(_, rest)| rest.split_once("<code>"))
        .and_then(|(_, rest)| rest.split_once("</code>"))
    {
        Some((id, _)) => format!("{title}, request ID {}", id.trim()),
        None => title,
    }
}

/// Waits until `url` answers 200, printing what it sees while it waits.
fn wait_answering(url: &str, timeout: Duration) -> Result<()> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        let now = match http("GET", url, None) {
            Ok((200, _)) => return Ok(()),
            Ok((code, _)) => format!("answers {code}: the app is not up yet"),
            Err(_) => "nothing listens yet".to_string(),
        };
        if now != last {
            println!(
                "waiting for {url} ({:.1} s): {now}",
                started.elapsed().as_secs_f64()
            );
            last = now;
        }
        if started.elapsed() > timeout {
            bail!(
                "{url} did not answer 200 within {timeout:?} (last: {last}); the container's \
                 output above says why"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One HTTP request; any status is an answer (only transport failures are errors).
fn http(method: &str, url: &str, json_body: Option<&str>) -> Result<(u16, String)> {
    let req = ureq::request(method, url).timeout(Duration::from_secs(10));
    let result = match json_body {
        Some(body) => req
            .set("Content-Type", "application/json")
            .send_string(body),
        None => req.call(),
    };
    match result {
        Ok(resp) => {
            let code = resp.status();
            Ok((code, resp.into_string().unwrap_or_default()))
        }
        Err(ureq::Error::Status(code, resp)) => Ok((code, resp.into_string().unwrap_or_default())),
        Err(e) => bail!("{method} {url}: {e}"),
    }
}
