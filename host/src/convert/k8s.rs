//! `pymanager export k8s`: a Deployment per long-running process (a Job for one that others
//! wait to see finish), a Service for each process that listens, probes from its checks,
//! and init containers that wait for what it depends on (Kubernetes has no `depends_on`).

use serde_json::{Map, Value, json};

use super::common::{Verified, verified_as};
use super::probe::{Style, probe, rewritten};
use super::source::{Check, CheckKind, Process, Source};
use super::{Losses, common};
use crate::config::{Condition, ConfigError, Policy};

/// What the command line adds.
pub struct Options<'a> {
    /// `--image`: the image of every process without `export.image`.
    pub image: Option<&'a str>,
    /// `--namespace`.
    pub namespace: Option<&'a str>,
    /// The config file's name, for the header and a label.
    pub from: &'a str,
}

/// The manifests for `src`, as one multi-document YAML.
pub fn export(src: &Source, opts: &Options, losses: &mut Losses) -> Result<String, ConfigError> {
    let mut docs = Vec::new();
    for p in &src.processes {
        let name = dns_name(&p.name, &format!("processes.{}", p.name), losses);
        let pod = pod(p, &name, src, opts, losses)?;
        docs.push(if common::runs_to_its_end(p, src) {
            job(p, &name, pod, opts, losses)
        } else {
            deployment(p, &name, pod, opts, losses)
        });
        if !p.listens.is_empty() {
            docs.push(service(p, &name, opts));
        }
    }
    let header = [
        format!("Written by `pymanager export k8s` from {}.", opts.from),
        "Probes and init containers run `pymanager verify`: each image must have the pymanager binary on its PATH.".into(),
    ];
    Ok(super::yaml::emit_all(&docs, &header))
}

fn metadata(name: &str, opts: &Options) -> Value {
    let mut m = json!({"name": name, "labels": labels(name)});
    if let Some(ns) = opts.namespace {
        m["namespace"] = ns.into();
    }
    m
}

fn labels(name: &str) -> Value {
    json!({"app.kubernetes.io/name": name, "app.kubernetes.io/managed-by": "pymanager-export"})
}

fn deployment(
    p: &Process,
    name: &str,
    pod: Map<String, Value>,
    opts: &Options,
    losses: &mut Losses,
) -> Value {
    let at = format!("processes.{}", p.name);
    match p.restart.policy {
        Policy::Always => {}
        policy => losses.push(
            format!("{at}.restart"),
            format!(
                "a Deployment restarts its container after every end; {} is not kept",
                match policy {
                    Policy::Never => "never",
                    _ => "on-failure",
                }
            ),
        ),
    }
    common::backoff_losses(
        &p.restart,
        &at,
        "the kubelet restarts with its own backoff (10 s, doubling, up to 5 min)",
        losses,
    );
    let mut pod = pod;
    pod.insert("restartPolicy".into(), "Always".into());
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(name, opts),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
            "template": {"metadata": {"labels": labels(name)}, "spec": pod}
        }
    })
}

fn job(
    p: &Process,
    name: &str,
    pod: Map<String, Value>,
    opts: &Options,
    losses: &mut Losses,
) -> Value {
    let at = format!("processes.{}", p.name);
    let (policy, limit) = match p.restart.policy {
        Policy::Never => ("Never", 0),
        Policy::OnFailure => ("OnFailure", p.restart.max_restarts),
        Policy::Always => {
            losses.push(
                format!("{at}.restart"),
                "a Job is not run again once it succeeded: always becomes OnFailure",
            );
            ("OnFailure", p.restart.max_restarts)
        }
    };
    common::backoff_losses(
        &p.restart,
        &at,
        "a Job retries with its own backoff (10 s, doubling)",
        losses,
    );
    let mut pod = pod;
    pod.insert("restartPolicy".into(), policy.into());
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(name, opts),
        "spec": {
            "backoffLimit": limit,
            "template": {"metadata": {"labels": labels(name)}, "spec": pod}
        }
    })
}

fn service(p: &Process, name: &str, opts: &Options) -> Value {
    let ports: Vec<Value> = p
        .listens
        .iter()
        .map(|n| json!({"name": port_name(p, *n), "port": n, "targetPort": n}))
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(name, opts),
        "spec": {"selector": {"app.kubernetes.io/name": name}, "ports": ports}
    })
}

/// The port's name as declared (made a valid port name), else `p<number>`.
fn port_name(p: &Process, n: u16) -> String {
    let declared = p
        .ports
        .iter()
        .find(|(_, m)| *m == n)
        .map(|(name, _)| name.as_str());
    let clean: String = declared
        .unwrap_or("")
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let clean = clean.trim_matches('-');
    if !clean.is_empty()
        && clean.len() <= 15
        && clean.chars().any(|c| c.is_ascii_lowercase())
        && !clean.contains("--")
    {
        clean.to_string()
    } else {
        format!("p{n}")
    }
}

/// The pod spec without its restart policy.
fn pod(
    p: &Process,
    name: &str,
    src: &Source,
    opts: &Options,
    losses: &mut Losses,
) -> Result<Map<String, Value>, ConfigError> {
    let at = format!("processes.{}", p.name);
    let image = common::image(p, opts.image)?;
    let mut c = Map::new();
    c.insert("name".into(), name.into());
    c.insert("image".into(), image.clone().into());
    // The kubelet expands `$(VAR)` in a command and in env values: `$$(` keeps it as written.
    let keep = |s: &str| s.replace("$(", "$$(");
    c.insert("command".into(), common::map_strings(json!(p.argv), &keep));
    if let Some(dir) = common::container_workdir(p, losses) {
        c.insert("workingDir".into(), dir.into());
    }
    if !p.env.is_empty() {
        let env: Vec<Value> = p
            .env
            .iter()
            .map(|(k, v)| json!({"name": k, "value": keep(v)}))
            .collect();
        c.insert("env".into(), json!(env));
    }
    if !p.listens.is_empty() {
        let ports: Vec<Value> = p
            .listens
            .iter()
            .map(|n| json!({"name": port_name(p, *n), "containerPort": n}))
            .collect();
        c.insert("ports".into(), json!(ports));
        common::warn_loopback_bind(p, losses);
    }
    common::warn_loopback_peers(p, src, &service_host, losses);
    // A Job's end is its check: an exited verifier needs no probe.
    let verifier = p
        .verifier
        .as_ref()
        .filter(|_| !matches!(verified_as(p), Verified::Completed));
    if let Some(v) = verifier
        && let Some(probe) = exec_probe(p, v, src, losses)
    {
        let period = common::whole_seconds(v.interval(), 1);
        let timeout = common::whole_seconds(common::attempt(v), 1) + 1;
        // Without a time-out: as many as Kubernetes counts (an int32).
        let start_failures = v.timeout().map_or(i32::MAX as u64, |t| {
            common::whole_seconds(t, 1).div_ceil(period).max(1)
        });
        c.insert(
            "startupProbe".into(),
            json!({"exec": {"command": probe}, "periodSeconds": period, "timeoutSeconds": timeout,
                   "failureThreshold": start_failures}),
        );
        c.insert(
            "readinessProbe".into(),
            json!({"exec": {"command": probe}, "periodSeconds": 10, "timeoutSeconds": timeout,
                   "failureThreshold": 3}),
        );
    }
    if let Some((l, period, failures)) = &p.liveness
        && let Some(probe) = exec_probe(p, l, src, losses)
    {
        c.insert(
            "livenessProbe".into(),
            json!({"exec": {"command": probe}, "periodSeconds": common::whole_seconds(*period, 1),
                   "timeoutSeconds": common::whole_seconds(common::attempt(l), 1) + 1,
                   "failureThreshold": failures}),
        );
    }
    if p.stop_signal != "SIGTERM" {
        losses.push(
            format!("{at}.stop_signal"),
            format!(
                "the kubelet stops a container with SIGTERM, not {}",
                p.stop_signal
            ),
        );
    }
    if p.suppress_output || p.redirect_output.is_some() {
        losses.push(
            format!("{at}.options"),
            "a container's output goes to its log (kubectl logs): suppress_output and redirect_output are not kept",
        );
    }
    let mut pod = Map::new();
    pod.insert(
        "terminationGracePeriodSeconds".into(),
        common::whole_seconds(p.grace, 0).into(),
    );
    let init = waits(p, &image, src, losses);
    if !init.is_empty() {
        pod.insert("initContainers".into(), json!(init));
    }
    pod.insert("containers".into(), json!([Value::Object(c)]));
    Ok(pod)
}

/// A check as an exec probe in the process's own container.
fn exec_probe(
    p: &Process,
    check: &Check,
    src: &Source,
    losses: &mut Losses,
) -> Option<Vec<String>> {
    let args = rewritten(check, &check.at, &p.name, src, &service_host, losses);
    let style = Style {
        pymanager: "pymanager",
        exec_plain: true,
        attempt: Some(common::attempt(check)),
        extra: &[],
    };
    match probe(check, &args, &style) {
        Ok(probe) => Some(probe.argv()),
        Err(why) => {
            losses.push(check.at.clone(), format!("{why}: no probe"));
            None
        }
    }
}

/// Init containers that wait, with each dependency's own verifier, for what `p` depends on.
fn waits(p: &Process, image: &str, src: &Source, losses: &mut Losses) -> Vec<Value> {
    let mut out = Vec::new();
    for (dep, cond) in &p.depends_on {
        let at = format!("processes.{}.depends_on.{dep}", p.name);
        let Some(d) = src.processes.iter().find(|q| &q.name == dep) else {
            continue;
        };
        let host = service_host(dep);
        let completes = matches!(verified_as(d), Verified::Completed);
        if matches!(cond, Condition::Exited | Condition::ExitedOk)
            || (*cond == Condition::Verified && completes)
        {
            losses.push(
                &at,
                format!("Kubernetes cannot wait in one pod for another's Job to finish: {dep} runs as a Job, {} does not wait for it", p.name),
            );
            continue;
        }
        let wait = match (cond, &d.verifier) {
            (Condition::Verified, Some(v)) if !matches!(v.kind, CheckKind::Exec(_)) => {
                let args = rewritten(v, &at, &p.name, src, &service_host, losses);
                let style = Style {
                    pymanager: "pymanager",
                    exec_plain: false,
                    attempt: None,
                    extra: &[],
                };
                match probe(v, &args, &style) {
                    Ok(probe) => probe.argv(),
                    Err(why) => {
                        losses.push(&at, format!("{why}: {} does not wait for {dep}", p.name));
                        continue;
                    }
                }
            }
            _ => {
                // Nothing of the dependency's own check can run here (an exec check runs in
                // its container) or none is asked for: its Service answering is the nearest.
                let Some(port) = d.listens.first() else {
                    losses.push(&at, format!("Kubernetes starts pods independently and {dep} has no port to wait for: {} does not wait", p.name));
                    continue;
                };
                if *cond == Condition::Verified && d.verifier.is_some() {
                    losses.push(&at, format!("{dep}'s exec check runs in its own container: {} waits for {host}:{port} to accept connections instead", p.name));
                }
                let args = json!({"host": host, "port": port, "timeout": null});
                vec![
                    "pymanager".into(),
                    "verify".into(),
                    "tcp".into(),
                    "--args".into(),
                    args.to_string(),
                ]
            }
        };
        out.push(json!({"name": format!("wait-{host}"), "image": image, "command": wait}));
    }
    out
}

/// A DNS-1123 label (lower case, digits, `-`, at most 63) for a process name; a change is a
/// loss when `at` is given.
pub fn dns_name(name: &str, at: &str, losses: &mut Losses) -> String {
    let mut s: String = name
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s = s.trim_matches('-').to_string();
    if s.is_empty() || !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        s = format!("p-{s}");
    }
    s.truncate(63);
    let s = s.trim_end_matches('-').to_string();
    if s != name && !at.is_empty() {
        losses.push(at, format!("not a valid Kubernetes name: named {s}"));
    }
    s
}

/// The name a process's Service answers to.
fn service_host(process: &str) -> String {
    dns_name(process, "", &mut Losses::default())
}
