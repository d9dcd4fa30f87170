//! The inner half of the demo: runs inside the demo's private namespaces (see `mod.rs`).

use super::api::{self, Console};
use super::{dns, web};
use crate::util::root;
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The demo's name server, written into the sample's `resolv.conf`.
pub const NAMESERVER: &str = "127.0.0.53";
/// Where yahoo.com and google.com point inside the demo.
const INTERNET: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 80);
const CONSOLE_LISTEN: &str = "127.0.0.1:8083";
const SAMPLE: &str = "twistlock-fargate-task";
const SEED_SQLI: &str =
    r#"{"-1+union+all+select+1,group_concat(user,0x3a,file_priv),3,4+from+mysql.user--"}"#;

/// A child process killed (if still running) when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn step(text: &str) {
    println!("\n==> {text}");
}

fn bin(name: &str) -> PathBuf {
    root().join("target").join("debug").join(name)
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

pub fn run(dir: &Path) -> Result<()> {
    let started = Instant::now();
    dns::start(SocketAddr::new(NAMESERVER.parse()?, 53), INTERNET)?;
    web::start(SocketAddr::new(INTERNET.into(), 80), "the internet")?;

    step("Starting the console (local, embedded store)");
    let admin_password = random_password()?;
    let console_log =
        std::fs::File::create(dir.join("console.log")).context("creating console.log")?;
    let _console = Running(
        Command::new(bin("lambda-console"))
            .args(["serve", "--listen", CONSOLE_LISTEN, "--data-dir"])
            .arg(dir.join("console"))
            .env("CONSOLE_ADMIN_USER", "admin")
            .env("CONSOLE_ADMIN_PASSWORD", &admin_password)
            .env("CONSOLE_DEFENDER_IMAGE", "fargate-defender:demo")
            .stdout(Stdio::null())
            .stderr(console_log)
            .spawn()
            .context("starting lambda-console")?,
    );
    let base = format!("http://{CONSOLE_LISTEN}");
    api::wait_ready(&base, Duration::from_secs(30))?;
    let admin = Console::login(&base, "admin", &admin_password)?;
    println!("console at {base}; logged in as admin");

    step(
        "Defining the seed's policy: prevent mkdir and DNS for yahoo.com in twistlock-fargate-task",
    );
    let policy = read_json(&root().join("examples/policy.json"))?;
    let saved = admin.put_runtime_policy(&policy)?;
    println!("{}", serde_json::to_string_pretty(&saved)?);
    let cnaf = read_json(&root().join("examples/cnaf-policy.json"))?;
    admin.put_cnaf_policy(&cnaf)?;
    println!("CNAF policy saved (external port 8080 -> app port 80, SQL injection: prevent)");

    step("Embedding the defender through the console's transform API (the Jenkins example)");
    let pipeline_password = random_password()?;
    admin.add_user("jenkins", &pipeline_password, "defender-manager")?;
    let bundle = admin.install_bundle("demo")?;
    let task = read_json(&root().join("examples/fargate-task.json"))?;
    let protected = api::transform_basic(&base, "jenkins", &pipeline_password, &task)?;
    let app = container(&protected, SAMPLE)?;
    println!(
        "{SAMPLE}: entryPoint {}\n{SAMPLE}: environment {}",
        app["entryPoint"], app["environment"]
    );

    step("Starting the protected task: the defender sidecar, then the sample container");
    let lib = dir.join("var-lib-defender");
    let status = Command::new(bin("defender"))
        .arg("install")
        .arg(&lib)
        .status()
        .context("running defender install")?;
    if !status.success() {
        bail!("the defender sidecar (`defender install`) failed: {status}");
    }
    println!("defender sidecar: installed into the shared volume, exited (dependsOn SUCCESS)");
    let sample_bin = dir.join("sample-bin");
    std::fs::create_dir_all(&sample_bin)?;
    write_script(&sample_bin.join("entry.sh"), ENTRY_SH)?;
    let status = start_container(app, &lib, dir, &sample_bin, &bundle.token)?
        .0
        .wait()
        .context("waiting for the sample container")?;
    println!("{SAMPLE}: exited with {status}");

    step("CNAF: the web variant (httpd) behind the defender's firewall on port 8080");
    let web_task = serde_json::json!({
        "family": "twistlock-fargate-task-web",
        "requiresCompatibilities": ["FARGATE"], "networkMode": "awsvpc", "cpu": "256", "memory": "512",
        "containerDefinitions": [{"name": "web", "image": "httpd:2.4", "entryPoint": ["httpd-foreground"],
                                  "portMappings": [{"containerPort": 80, "protocol": "tcp"}]}]
    });
    let web_file = dir.join("web-task.json");
    std::fs::write(&web_file, serde_json::to_vec_pretty(&web_task)?)?;
    let out = Command::new(bin("deploy-protected"))
        .args(["embed", "--file"])
        .arg(&web_file)
        .args([
            "--console-url",
            &base,
            "--defender-image",
            "fargate-defender:demo",
        ])
        .args(["--cnaf-port", "8080", "--app-port", "80"])
        .output()
        .context("running deploy-protected embed")?;
    if !out.status.success() {
        bail!(
            "deploy-protected embed failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let web_protected: Value =
        serde_json::from_slice(&out.stdout).context("reading the protected web task")?;
    let web_app = container(&web_protected, "web")?;
    let web_bin = dir.join("web-bin");
    std::fs::create_dir_all(&web_bin)?;
    let me = std::env::current_exe().context("finding the xtask executable")?;
    write_script(
        &web_bin.join("httpd-foreground"),
        &format!(
            "#!/bin/sh\nexec '{}' demo-web 127.0.0.1:80 'It works!'\n",
            me.display()
        ),
    )?;
    let mut web_container = start_container(web_app, &lib, dir, &web_bin, &bundle.token)?;
    wait_listening("127.0.0.1:8080", Duration::from_secs(30))?;
    let (code, _) = http("GET", "http://127.0.0.1:8080/", None)?;
    println!("curl http://<task>:8080/                      -> {code} (clean request forwarded to the app)");
    let (code, body) = http("POST", "http://127.0.0.1:8080/", Some(SEED_SQLI))?;
    println!("curl -X POST -d '{SEED_SQLI}' -> {code}");
    let first = body
        .lines()
        .find(|l| l.to_ascii_lowercase().contains("request id") || l.contains("blocked"))
        .unwrap_or("");
    println!("  block page: {}", first.trim());
    stop(&mut web_container.0)?;

    step("Audits, as the console returns them (Monitor > Events)");
    let wanted: [(&str, &Check); 3] = [
        ("the mkdir block", &|m: &str| {
            m.contains("mkdir launched from")
                && m.ends_with(
                    "and is explicitly blocked in the runtime rule. Full command: mkdir test",
                )
        }),
        ("the yahoo.com DNS audit", &|m: &str| {
            m == "DNS resolution of suspicious name yahoo.com"
        }),
        ("the SQL injection block", &|m: &str| {
            m.starts_with("SQL injection detected") && m.ends_with("request blocked")
        }),
    ];
    let deadline = Instant::now() + Duration::from_secs(40);
    let (runtime, firewall) = loop {
        let runtime = admin.audits(false)?;
        let firewall = admin.audits(true)?;
        let all: Vec<&str> = runtime
            .iter()
            .chain(firewall.iter())
            .map(|a| a.message.as_str())
            .collect();
        if wanted.iter().all(|(_, ok)| all.iter().any(|m| ok(m))) || Instant::now() > deadline {
            break (runtime, firewall);
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
    let all: Vec<&str> = runtime
        .iter()
        .chain(firewall.iter())
        .map(|a| a.message.as_str())
        .collect();
    let missing: Vec<&str> = wanted
        .iter()
        .filter(|(_, ok)| !all.iter().any(|m| ok(m)))
        .map(|(name, _)| *name)
        .collect();
    if !missing.is_empty() {
        bail!("the console is missing {}", missing.join(", "));
    }
    println!(
        "\ndemo: OK: the seed's audits are in the console ({:.1} s after the build)",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Recognises one of the seed's audit messages.
type Check = dyn Fn(&str) -> bool;

const ENTRY_SH: &str = r#"#!/bin/sh
# The seed's sample container: mkdir, then outbound requests to yahoo.com and google.com.
echo "entry.sh: mkdir test"
mkdir test || echo "entry.sh: mkdir was refused"
echo "entry.sh: wget http://yahoo.com/"
wget -q -T 5 -t 1 -O - http://yahoo.com/ || echo "entry.sh: wget yahoo.com failed"
echo "entry.sh: wget http://google.com/"
wget -q -T 5 -t 1 -O - http://google.com/ || echo "entry.sh: wget google.com failed"
"#;

fn write_script(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("making {} executable", path.display()))
}

/// The container definition named `name` in a protected task definition.
fn container<'a>(task: &'a Value, name: &str) -> Result<&'a Value> {
    task["containerDefinitions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .with_context(|| format!("the protected task has no container {name}"))
}

/// Starts a container of the protected task as ECS would: its entryPoint + command, its
/// environment, the defender token from the task's secret, the shared defender volume.
fn start_container(
    def: &Value,
    lib: &Path,
    dir: &Path,
    bin_dir: &Path,
    token: &str,
) -> Result<Running> {
    let name = def["name"].as_str().unwrap_or("app").to_string();
    let mut argv: Vec<String> = def["entryPoint"]
        .as_array()
        .context("the protected container has no entryPoint")?
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    if let Some(cmd) = def["command"].as_array() {
        argv.extend(cmd.iter().filter_map(|v| v.as_str().map(String::from)));
    }
    if argv.first().map(String::as_str) != Some("/var/lib/defender/defender") {
        bail!("container {name} is not wrapped by the defender: {argv:?}");
    }
    let workdir = dir.join(format!("{name}-root"));
    std::fs::create_dir_all(&workdir)?;
    let mut cmd = Command::new(lib.join("defender"));
    cmd.args(&argv[1..])
        .current_dir(&workdir)
        .env_clear()
        .env(
            "PATH",
            format!("{}:/bin:/usr/bin:/sbin:/usr/sbin", bin_dir.display()),
        )
        .env("DEFENDER_TOKEN", token)
        .env("DEFENDER_STATE_DIR", dir.join(format!("{name}-state")))
        .env("DEFENDER_POLL_SECONDS", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in def["environment"].as_array().into_iter().flatten() {
        if let (Some(k), Some(v)) = (var["name"].as_str(), var["value"].as_str()) {
            cmd.env(k, v);
        }
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting container {name}"))?;
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let name = name.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                println!("[{name}] {line}");
            }
        });
    }
    Ok(Running(child))
}

fn wait_listening(addr: &str, timeout: Duration) -> Result<()> {
    let addr: SocketAddr = addr.parse()?;
    let deadline = Instant::now() + timeout;
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if Instant::now() > deadline {
            bail!(
                "nothing listens on {addr} after {timeout:?} (is CNAF enabled in `defender run`?)"
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
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

/// Stops a container as ECS does: SIGTERM, then SIGKILL after a grace period.
fn stop(child: &mut Child) -> Result<ExitStatus> {
    let pid = libc::pid_t::try_from(child.id()).context("pid out of range")?;
    // SAFETY: kill(2) on the pid of a child we spawned and have not reaped; no memory is touched.
    unsafe {
        libc::kill(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            child.kill()?;
            return Ok(child.wait()?);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
