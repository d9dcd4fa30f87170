//! gotestwaf test cases as requests: every payload, through each encoder, into each placeholder.

use std::path::Path;

use anyhow::Result;
use base64::Engine;
use cnaf::RequestParts;
use yaml_rust2::Yaml;

use super::{load, strs, yaml_files, Case};

pub(super) fn gotestwaf(dir: &Path) -> Result<Vec<Case>> {
    let mut files = Vec::new();
    yaml_files(dir, &["yml", "yaml"], &mut files)?;
    let mut cases = Vec::new();
    for f in files {
        let benign = f.to_string_lossy().contains("false-pos");
        for doc in load(&f)? {
            let class = doc["type"].as_str().unwrap_or("unknown").to_string();
            let class = if benign {
                "false-pos texts".to_string()
            } else {
                normalise_class(&class)
            };
            let payloads = strs(&doc["payload"]);
            let encoders = strs(&doc["encoder"]);
            let placeholders: Vec<&Yaml> = doc["placeholder"]
                .as_vec()
                .map(|v| v.iter().collect())
                .unwrap_or_default();
            for p in &payloads {
                for e in &encoders {
                    let encoded = encode(e, p);
                    for ph in &placeholders {
                        if let Some((parts, body)) = place(ph, &encoded) {
                            cases.push(Case {
                                source: "gotestwaf",
                                class: class.clone(),
                                attack: !benign,
                                parts,
                                body,
                                label: format!(
                                    "{} {} via {}: {}",
                                    e,
                                    placeholder_name(ph),
                                    f.file_name()
                                        .map(|n| n.to_string_lossy().into_owned())
                                        .unwrap_or_default(),
                                    p
                                ),
                            });
                        }
                    }
                }
            }
        }
    }
    Ok(cases)
}

/// `8KB SQL Injection` and `SQL Injection` are one class; `community-lfi-multipart` is LFI.
fn normalise_class(c: &str) -> String {
    let c = c.trim();
    let c = c.split_once("KB ").map_or(c, |(_, rest)| rest);
    match c {
        "community-lfi-multipart" | "Path Traversal" => "LFI".into(),
        "Shell" => "RCE".into(),
        "RawRequest test" => "RCE".into(),
        "SST Injection" | "SS Injection" => "Template / SSI injection".into(),
        "REST" | "REST non-CRUD" | "SOAP" => "API (XSS/SQLi)".into(),
        other => other.into(),
    }
}

fn placeholder_name(ph: &Yaml) -> String {
    match ph {
        Yaml::String(s) => s.clone(),
        Yaml::Hash(h) => h
            .keys()
            .next()
            .and_then(Yaml::as_str)
            .unwrap_or("?")
            .to_string(),
        _ => "?".into(),
    }
}

fn encode(encoder: &str, p: &str) -> String {
    match encoder {
        "URL" => {
            percent_encoding::utf8_percent_encode(p, percent_encoding::NON_ALPHANUMERIC).to_string()
        }
        "Base64Flat" => base64::engine::general_purpose::STANDARD.encode(p.as_bytes()),
        _ => p.to_string(),
    }
}

fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

fn post(target: &str, ct: &str, body: Vec<u8>) -> (RequestParts, Vec<u8>) {
    let parts = RequestParts::new("POST", target)
        .header("Host", "app.example")
        .header(
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        )
        .header("Content-Type", ct)
        .header("Content-Length", &body.len().to_string());
    (parts, body)
}

fn get(target: &str) -> RequestParts {
    RequestParts::new("GET", target)
        .header("Host", "app.example")
        .header(
            "User-Agent",
            "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        )
}

fn place(ph: &Yaml, v: &str) -> Option<(RequestParts, Vec<u8>)> {
    let name = placeholder_name(ph);
    Some(match name.as_str() {
        "URLParam" => (get(&format!("/?q={v}")), Vec::new()),
        "URLPath" => (get(&format!("/{v}")), Vec::new()),
        "Header" => (get("/").header("X-Custom", v), Vec::new()),
        "UserAgent" => {
            let mut p = get("/");
            p.headers.retain(|(n, _)| n != "User-Agent");
            (p.header("User-Agent", v), Vec::new())
        }
        "JSONRequest" => post(
            "/",
            "application/json",
            format!("{{\"test\":true,\"data\":{}}}", json_string(v)).into_bytes(),
        ),
        "HTMLForm" => post(
            "/",
            "application/x-www-form-urlencoded",
            format!("data={v}").into_bytes(),
        ),
        "HTMLMultipartForm" => {
            let b = "b0undaryX7r";
            let body = format!(
                "--{b}\r\nContent-Disposition: form-data; name=\"data\"\r\n\r\n{v}\r\n--{b}--\r\n"
            );
            post(
                "/",
                &format!("multipart/form-data; boundary={b}"),
                body.into_bytes(),
            )
        }
        "XMLBody" => post("/", "application/xml", v.as_bytes().to_vec()),
        "SOAPBody" => {
            let body = format!("<?xml version=\"1.0\"?><soap:Envelope xmlns:soap=\"http://www.w3.org/2003/05/soap-envelope\"><soap:Body><q>{v}</q></soap:Body></soap:Envelope>");
            post("/", "application/soap+xml", body.into_bytes())
        }
        "GraphQL" => {
            let method = ph["GraphQL"]["method"].as_str().unwrap_or("POST");
            if method == "GET" {
                (get(&format!("/graphql?query={v}")), Vec::new())
            } else {
                post("/graphql", "application/json", v.as_bytes().to_vec())
            }
        }
        "gRPC" => {
            let mut body = vec![0u8];
            body.extend_from_slice(&(v.len() as u32).to_be_bytes());
            body.extend_from_slice(v.as_bytes());
            post("/service.Method/Call", "application/grpc", body)
        }
        "RawRequest" => {
            let r = &ph["RawRequest"];
            let method = r["method"].as_str().unwrap_or("POST");
            let path = r["path"].as_str().unwrap_or("/").replace("{{payload}}", v);
            let body = r["body"].as_str().unwrap_or("").replace("{{payload}}", v);
            let mut parts = RequestParts::new(method, &path).header("Host", "app.example");
            if let Some(h) = r["headers"].as_hash() {
                for (k, val) in h {
                    if let (Some(k), Some(val)) = (k.as_str(), val.as_str()) {
                        parts = parts.header(k, &val.replace("{{payload}}", v));
                    }
                }
            }
            let body = body
                .replace("\r\n", "\n")
                .replace('\n', "\r\n")
                .into_bytes();
            parts = parts.header("Content-Length", &body.len().to_string());
            (parts, body)
        }
        _ => return None,
    })
}
