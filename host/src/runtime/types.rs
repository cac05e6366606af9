//! The runtime's public vocabulary: what a module is, what it may do, what can go wrong.

use std::path::PathBuf;
use std::time::Duration;

/// Settings for the whole runtime, fixed for one run of pymanager.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Where compiled components are cached between runs; `None` picks the user's cache
    /// directory (`$XDG_CACHE_HOME/pymanager` or `~/.cache/pymanager`).
    pub cache_dir: Option<PathBuf>,
    /// The user's secret that authenticates cache entries (a 0600 file, created the first
    /// time); `None` picks `$XDG_STATE_HOME/pymanager/cache-key` or
    /// `~/.local/state/pymanager/cache-key`, outside the cache so that a shared or restored
    /// cache never brings its own key.
    pub cache_key: Option<PathBuf>,
    /// Component instances alive at once in a pool of this runtime's own (past it a new
    /// one waits for one to end); `None`, the default, shares the process's engine and
    /// its pool of [`POOL_INSTANCES`](super::POOL_INSTANCES).
    pub instances: Option<u32>,
    /// Where the modules' host grants are written, for the refusal that says which grant
    /// to add.
    pub grants_from: GrantsFrom,
}

/// Where a module's host grants are written: the refusal of a host it was not granted
/// names the grant to add there.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GrantsFrom {
    /// `modules.<alias>.allow.hosts` in the config.
    #[default]
    Config,
    /// `--allow-host` on `pymanager verify`'s command line.
    AllowHostFlag,
}

/// Where a module's component comes from.
#[derive(Debug, Clone)]
pub enum ModuleSource {
    /// Embedded in the binary (the built-in verifiers).
    Builtin(&'static [u8]),
    /// A `.wasm` file named in the config (already resolved against the config's directory).
    File(PathBuf),
    /// A Python module written for the original pymanager, built into a component (with
    /// componentize-py, cached by content) when loaded.
    Python(super::python::PythonModule),
}

/// One host and port a module may reach over HTTP or TCP: a grant names both, so that
/// granting a service never grants every other port of its machine (the manager's own API
/// among them on loopback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    /// A host name or IP literal as written in URLs (lower case, no brackets).
    pub host: String,
    /// The port.
    pub port: u16,
}

impl HostPattern {
    /// Parses `host:port` or `[v6]:port`; the error says what is wrong and how to write it.
    pub fn parse(s: &str) -> Result<HostPattern, String> {
        let s = s.trim();
        let example = |host: &str| {
            if host.contains(':') {
                format!("[{host}]:80")
            } else {
                format!("{host}:80")
            }
        };
        if s.is_empty() {
            return Err("expected host:port, for example \"127.0.0.1:8080\"".into());
        }
        if s.contains('*') {
            return Err(format!(
                "'{s}': wildcards are not grants; name each host:port a verifier may reach"
            ));
        }
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let (host, tail) = rest
                .split_once(']')
                .ok_or_else(|| format!("'{s}': missing ']'"))?;
            match tail.strip_prefix(':') {
                Some(p) => (host, p),
                None if tail.is_empty() => {
                    return Err(format!(
                        "'{s}' has no port: a grant names host:port (for example \"{}\")",
                        example(host)
                    ));
                }
                None => return Err(format!("'{s}': unexpected text after ']'")),
            }
        } else {
            match s.rsplit_once(':') {
                Some((host, p)) if !host.contains(':') => (host, p),
                Some(_) => {
                    return Err(format!(
                        "'{s}': write an IPv6 address in brackets, with a port (\"[::1]:8080\")"
                    ));
                }
                None => {
                    return Err(format!(
                        "'{s}' has no port: a grant names host:port (for example \"{}\")",
                        example(s)
                    ));
                }
            }
        };
        if host.is_empty() {
            return Err(format!("'{s}': no host before the port"));
        }
        Ok(HostPattern {
            host: host.to_ascii_lowercase(),
            port: port
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| format!("'{s}': '{port}' is not a port number (1 to 65535)"))?,
        })
    }

    /// True when this pattern allows `host`:`port`.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.host.eq_ignore_ascii_case(host) && self.port == port
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Which hosts a module's HTTP and TCP calls may reach. Whatever the grant, no verifier
/// reaches the manager's own REST API (see [`super::forbid_address`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostGrants {
    /// Anything: the built-in verifiers reach exactly what their arguments name, and the
    /// arguments come from the config, which is the grant.
    Any,
    /// Only these. An external module without `allow.hosts` gets none: no network.
    List(Vec<HostPattern>),
    /// This machine's loopback addresses and `localhost`, any port but one a pymanager
    /// listens on (checked at each connection, see `runtime::listeners`): what a Python
    /// module written for the original pymanager gets without `allow.hosts`, so that its
    /// config runs unchanged (the original's verifiers checked services on this machine).
    Loopback,
}

impl HostGrants {
    /// The default grant of an external module: nothing.
    pub fn none() -> HostGrants {
        HostGrants::List(Vec::new())
    }

    /// True when `host`:`port` may be reached.
    pub fn allows(&self, host: &str, port: u16) -> bool {
        match self {
            HostGrants::Any => true,
            HostGrants::List(list) => list.iter().any(|p| p.allows(host, port)),
            HostGrants::Loopback => {
                let host = host.trim_start_matches('[').trim_end_matches(']');
                host.eq_ignore_ascii_case("localhost")
                    || host
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback())
            }
        }
    }
}

/// What a module may do; nothing beyond what is listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grants {
    /// Hosts reachable by `http-request` and `tcp-connect`.
    pub hosts: HostGrants,
}

/// Resource caps per verifier call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory a guest instance may grow to.
    pub memory_bytes: usize,
    /// Guest execution time (not counting time spent waiting in host calls) per call.
    pub cpu_time: Duration,
    /// Wall-clock bound on one call, waits included, when the module sets one
    /// (`limits.timeout_s`). `None`, the default, lets a verification follow its verifier's
    /// own `timeout` argument (see [`Limits::verification_bound`]).
    pub call_timeout: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 64 << 20,
            cpu_time: Duration::from_secs(5),
            call_timeout: None,
        }
    }
}

/// The `timeout` a verifier has when its arguments name none: what every built-in verifier,
/// the guest SDK's examples and the original's verifiers default to.
pub const CONVENTIONAL_TIMEOUT: Duration = Duration::from_secs(30);

/// Added to a verifier's own `timeout` for the wall-clock bound of its call: the verifier
/// should give up by itself first and say why; the bound is only the backstop for one that
/// does not.
pub const CALL_MARGIN: Duration = Duration::from_secs(10);

/// How long one call into a guest may take, and why; the reason goes into the message when
/// the bound is hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallBound {
    /// The module's `limits.timeout_s`.
    Module(Duration),
    /// The verifier's own `timeout` argument (or [`CONVENTIONAL_TIMEOUT`]) plus
    /// [`CALL_MARGIN`].
    Arguments {
        /// The verifier's own time limit.
        timeout: Duration,
    },
    /// `"timeout": null`: the verifier waits without limit; only a stop, restart or
    /// shutdown ends it (by dropping the call).
    Unbounded,
    /// `names()` and `validate()`, whose host calls never wait: [`SETUP_CALL_TIMEOUT`].
    Setup,
}

/// The bound of the calls made while loading (`names()`, `validate()`) when the module sets
/// none; they never wait, so only a guest stuck in host code could come near it.
pub const SETUP_CALL_TIMEOUT: Duration = Duration::from_secs(60);

impl CallBound {
    /// The wall-clock limit, if any.
    pub fn limit(self) -> Option<Duration> {
        match self {
            CallBound::Module(d) => Some(d),
            CallBound::Arguments { timeout } => Some(timeout.saturating_add(CALL_MARGIN)),
            CallBound::Unbounded => None,
            CallBound::Setup => Some(SETUP_CALL_TIMEOUT),
        }
    }

    /// Why the call had to end by now, for the message when it did not.
    fn reason(self) -> String {
        match self {
            CallBound::Module(_) => "its module's call time-out".into(),
            CallBound::Arguments { timeout } => format!(
                "its timeout of {} plus {}",
                super::human::human_duration(timeout),
                super::human::human_duration(CALL_MARGIN)
            ),
            CallBound::Unbounded => "no limit".into(),
            CallBound::Setup => "the limit for loading a module".into(),
        }
    }

    /// The message of a call that did not finish within this bound.
    pub fn exceeded(self, who: &str) -> String {
        match self.limit() {
            Some(d) => format!(
                "verifier {who} did not finish within {} ({})",
                super::human::human_duration(d),
                self.reason()
            ),
            None => format!("verifier {who} did not finish"),
        }
    }

    /// The bound of a call that runs no verification, for a module with these limits.
    pub fn setup(limits: &Limits) -> CallBound {
        limits
            .call_timeout
            .map_or(CallBound::Setup, CallBound::Module)
    }
}

impl Limits {
    /// The bound of one verification with these arguments (JSON): the module's own limit
    /// wins; otherwise the verifier's `timeout` argument in seconds plus a margin; a
    /// `timeout` of `null` means no bound; without a `timeout` the conventional 30 s.
    pub fn verification_bound(&self, args_json: &str) -> CallBound {
        if let Some(d) = self.call_timeout {
            return CallBound::Module(d);
        }
        let args: serde_json::Value = serde_json::from_str(args_json).unwrap_or_default();
        let seconds = match args.get("timeout") {
            Some(serde_json::Value::Null) => return CallBound::Unbounded,
            Some(serde_json::Value::Number(n)) => n.as_f64(),
            // A loose value (`"30"`) is the verifier's to accept or refuse; read it as it would.
            Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok(),
            _ => None,
        };
        let timeout = match seconds {
            None => CONVENTIONAL_TIMEOUT,
            Some(s) if s.is_nan() || s <= 0.0 => Duration::ZERO,
            Some(s) => match Duration::try_from_secs_f64(s) {
                Ok(d) => d,
                // Longer than a Duration holds: as good as no bound.
                Err(_) => return CallBound::Unbounded,
            },
        };
        CallBound::Arguments { timeout }
    }
}

/// A loaded module's identity and rights, shared by all its calls.
#[derive(Debug)]
pub(crate) struct ModuleInfo {
    pub alias: String,
    pub grants: Grants,
    pub limits: Limits,
    pub grants_from: GrantsFrom,
}

#[cfg(test)]
impl ModuleInfo {
    /// A module of the runtime's own unit tests: granted nothing, default limits.
    pub(crate) fn bare(alias: &str) -> ModuleInfo {
        ModuleInfo {
            alias: alias.into(),
            grants: Grants {
                hosts: HostGrants::none(),
            },
            limits: Limits::default(),
            grants_from: Default::default(),
        }
    }
}

/// A module to load, under the alias verifier types name it by.
#[derive(Debug, Clone)]
pub struct ModuleDecl {
    /// The key under `modules` (or a built-in's original module name).
    pub alias: String,
    /// Where its component comes from.
    pub source: ModuleSource,
    /// What it may reach.
    pub grants: Grants,
    /// Its resource caps.
    pub limits: Limits,
}

/// A verifier inside a loaded module.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VerifierRef {
    /// The module's alias.
    pub module: String,
    /// The verifier's name as the module lists it, e.g. `HttpOkVerifier`.
    pub name: String,
}

impl std::fmt::Display for VerifierRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.module, self.name)
    }
}

/// A module could not be loaded.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("module '{alias}': {reason}")]
pub struct RuntimeError {
    /// The module's alias.
    pub alias: String,
    /// One line saying what is wrong and what to fix.
    pub reason: String,
}

/// A verifier call failed: the arguments were refused, the process never reached its
/// state, or the guest itself failed (trap, deadline, memory cap).
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct VerifyError(pub String);

/// One built-in module: its original name, a short alias, and its component.
#[derive(Debug, Clone, Copy)]
pub struct Builtin {
    /// The module name the original used (`pymutils.http_verifier`), the alias configs use.
    pub module: &'static str,
    /// A short name (`http`) accepted as a verifier type on its own.
    pub short: &'static str,
    /// The one verifier it provides (`HttpOkVerifier`).
    pub verifier: &'static str,
    /// The component (`.wasm`), or `None` when this binary was built without it (every
    /// build made by `host/build.rs` embeds all four).
    pub component: Option<&'static [u8]>,
}

/// The verifiers built into the binary: the two of the original pymanager under their
/// original module names, and two new ones.
pub const BUILTINS: &[Builtin] = &[
    Builtin {
        module: "pymutils.http_verifier",
        short: "http",
        verifier: "HttpOkVerifier",
        component: Some(include_bytes!(env!("PYMANAGER_BUILTIN_HTTP"))),
    },
    Builtin {
        module: "pymutils.exited_verifier",
        short: "exited",
        verifier: "ExitedVerifier",
        component: Some(include_bytes!(env!("PYMANAGER_BUILTIN_EXITED"))),
    },
    Builtin {
        module: "pymanager.tcp_verifier",
        short: "tcp",
        verifier: "TcpPortVerifier",
        component: Some(include_bytes!(env!("PYMANAGER_BUILTIN_TCP"))),
    },
    Builtin {
        module: "pymanager.output_verifier",
        short: "output",
        verifier: "OutputVerifier",
        component: Some(include_bytes!(env!("PYMANAGER_BUILTIN_OUTPUT"))),
    },
];

impl Builtin {
    /// The declaration that loads this built-in: its module name as alias, any host
    /// (its arguments name what it reaches), default limits.
    pub fn decl(&self) -> Option<ModuleDecl> {
        Some(ModuleDecl {
            alias: self.module.to_string(),
            source: ModuleSource::Builtin(self.component?),
            grants: Grants {
                hosts: HostGrants::Any,
            },
            limits: Limits::default(),
        })
    }

    /// The built-in whose module name or short name is `name`.
    pub fn find(name: &str) -> Option<&'static Builtin> {
        BUILTINS
            .iter()
            .find(|b| b.module == name || b.short == name)
    }

    /// The built-in a verifier type names on its own: its verifier's name
    /// (`HttpOkVerifier`) or its short name (`http`).
    pub fn named(kind: &str) -> Option<&'static Builtin> {
        BUILTINS
            .iter()
            .find(|b| b.verifier == kind || b.short == kind)
    }

    /// The built-in a verifier type names when no `modules` entry says otherwise: its
    /// verifier's name, its short name, or `module.Name` of a built-in module or package.
    pub fn resolve(kind: &str) -> Option<&'static Builtin> {
        Self::named(kind).or_else(|| {
            let (module, name) = kind.rsplit_once('.')?;
            Self::in_module(module, name)
        })
    }

    /// The built-in verifier `name` as the module (or package) `module` provides it.
    ///
    /// The original loaded a module with Python's `__import__`, which hands back the
    /// top-level package: every verifier of `pymutils` was reachable from `pymutils` itself
    /// and from each of its modules (`pymutils.ExitedVerifier`,
    /// `pymutils.http_verifier.ExitedVerifier`). The same holds here for each package.
    pub fn in_module(module: &str, name: &str) -> Option<&'static Builtin> {
        Self::provided_by(module).find(|b| b.verifier == name)
    }

    /// The built-ins the module (or package) `module` provides; none if it is not built in.
    pub fn provided_by(module: &str) -> impl Iterator<Item = &'static Builtin> {
        let package = module.split('.').next().unwrap_or(module).to_string();
        BUILTINS
            .iter()
            .filter(move |b| b.module.split('.').next() == Some(package.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_found_by_module_package_and_name() {
        let http = "pymutils.http_verifier";
        let exited = "pymutils.exited_verifier";
        assert_eq!(Builtin::find("http").map(|b| b.module), Some(http));
        assert_eq!(
            Builtin::find(http).map(|b| b.verifier),
            Some("HttpOkVerifier")
        );
        assert!(Builtin::find("HttpOkVerifier").is_none());
        assert_eq!(
            Builtin::named("HttpOkVerifier").map(|b| b.module),
            Some(http)
        );
        assert_eq!(Builtin::named("exited").map(|b| b.module), Some(exited));
        assert!(Builtin::named(http).is_none());
        for (module, name, want) in [
            (http, "HttpOkVerifier", Some(http)),
            ("pymutils", "ExitedVerifier", Some(exited)),
            ("pymutils", "HttpOkVerifier", Some(http)),
            (http, "ExitedVerifier", Some(exited)),
            (
                "pymanager.tcp_verifier",
                "TcpPortVerifier",
                Some("pymanager.tcp_verifier"),
            ),
            ("pymutils", "TcpPortVerifier", None),
            ("mine", "HttpOkVerifier", None),
            ("pymutilsx", "HttpOkVerifier", None),
        ] {
            assert_eq!(
                Builtin::in_module(module, name).map(|b| b.module),
                want,
                "{module}.{name}"
            );
        }
        let names: Vec<_> = Builtin::provided_by("pymutils")
            .map(|b| b.verifier)
            .collect();
        assert_eq!(names, ["HttpOkVerifier", "ExitedVerifier"]);
        assert_eq!(Builtin::provided_by("nope").count(), 0);
    }

    #[test]
    fn a_verification_is_bounded_by_its_own_timeout_unless_the_module_says_otherwise() {
        let follow = Limits::default();
        let bound = |args: &str| follow.verification_bound(args);
        let args = |s: u64| CallBound::Arguments {
            timeout: Duration::from_secs(s),
        };
        assert_eq!(bound(r#"{"timeout": 5}"#), args(5));
        assert_eq!(
            bound(r#"{"timeout": 5}"#).limit(),
            Some(Duration::from_secs(15))
        );
        assert_eq!(bound(r#"{"timeout": "7"}"#), args(7));
        assert_eq!(bound(r#"{"url": "x"}"#), args(30));
        assert_eq!(bound("{}"), args(30));
        assert_eq!(bound(r#"{"timeout": -1}"#), args(0));
        assert_eq!(bound(r#"{"timeout": null}"#), CallBound::Unbounded);
        assert_eq!(bound(r#"{"timeout": 1e300}"#), CallBound::Unbounded);
        assert_eq!(CallBound::Unbounded.limit(), None);
        let fixed = Limits {
            call_timeout: Some(Duration::from_secs(2)),
            ..Limits::default()
        };
        assert_eq!(
            fixed.verification_bound(r#"{"timeout": null}"#),
            CallBound::Module(Duration::from_secs(2))
        );
        assert_eq!(
            args(30).exceeded("m.V"),
            "verifier m.V did not finish within 40 s (its timeout of 30 s plus 10 s)"
        );
        assert_eq!(CallBound::setup(&follow).limit(), Some(SETUP_CALL_TIMEOUT));
    }
}
