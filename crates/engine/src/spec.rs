//! `--engine SPEC`: `demo`, `synthetic:RATE_HZ:BYTES`, `unix:PATH`, `tcp:HOST:PORT`.

use crate::paced::Pacer;
use serde_json::Value;
use std::{fmt, str::FromStr, sync::Arc};

use crate::{
    demo::Demo, paced, synthetic::Synthetic, Engine, EngineError, EngineSession, OpenRequest,
};

/// A parsed `--engine` value.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineSpec {
    /// The built-in audio engine.
    Demo,
    /// The load generator.
    Synthetic {
        /// Slices per second.
        rate_hz: f64,
        /// Payload bytes per slice.
        bytes: usize,
    },
    /// An external engine connecting to a Unix socket seatkeeper listens on.
    Unix(String),
    /// An external engine connecting to a TCP address seatkeeper listens on.
    Tcp(String),
}

/// Largest synthetic slice: the default `--max-message-bytes` of a client is
/// no limit on what the server sends, but 64 MiB is past any sane slice.
pub const MAX_SYNTHETIC_BYTES: usize = 64 << 20;

impl FromStr for EngineSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (head, rest) = s.split_once(':').unwrap_or((s, ""));
        match head {
            "demo" if rest.is_empty() => Ok(Self::Demo),
            "synthetic" => {
                let (rate, bytes) = rest
                    .split_once(':')
                    .ok_or("synthetic engine wants synthetic:RATE_HZ:BYTES")?;
                let rate_hz: f64 = rate.parse().map_err(|_| format!("bad synthetic rate {rate:?}"))?;
                let bytes: usize = bytes.parse().map_err(|_| format!("bad synthetic size {bytes:?}"))?;
                if !(rate_hz > 0.0 && rate_hz <= 10_000_000.0) {
                    return Err(format!("synthetic rate {rate_hz} is outside (0, 10000000]"));
                }
                if bytes > MAX_SYNTHETIC_BYTES {
                    return Err(format!("synthetic size {bytes} is over {MAX_SYNTHETIC_BYTES}"));
                }
                Ok(Self::Synthetic { rate_hz, bytes })
            }
            "unix" if !rest.is_empty() => Ok(Self::Unix(rest.to_owned())),
            "tcp" if rest.contains(':') => Ok(Self::Tcp(rest.to_owned())),
            _ => Err(format!(
                "unknown engine {s:?}: use demo, synthetic:RATE_HZ:BYTES, unix:PATH or tcp:HOST:PORT"
            )),
        }
    }
}

impl fmt::Display for EngineSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Demo => write!(f, "demo"),
            Self::Synthetic { rate_hz, bytes } => write!(f, "synthetic:{rate_hz}:{bytes}"),
            Self::Unix(p) => write!(f, "unix:{p}"),
            Self::Tcp(a) => write!(f, "tcp:{a}"),
        }
    }
}

/// A built-in engine: each session's generator runs on the engine's one
/// shared [`Pacer`]. A synthetic engine builds its payload and description
/// once; each session clones them (a reference count for the payload), so
/// 10,000 sessions of 1 KiB slices hold one 1 KiB payload, not 10,000.
#[derive(Debug, Clone)]
pub struct BuiltIn(
    pub EngineSpec,
    pub Pacer,
    Option<(EngineSpec, Synthetic, Value)>,
);

impl BuiltIn {
    /// The built-in engine `spec` names, with a pacer of its own.
    pub fn new(spec: EngineSpec) -> Self {
        let synthetic = match spec {
            EngineSpec::Synthetic { rate_hz, bytes } => {
                let gen = Synthetic::new(rate_hz, bytes);
                let info = gen.info();
                Some((spec.clone(), gen, info))
            }
            _ => None,
        };
        Self(spec, Pacer::new(), synthetic)
    }
}

impl Engine for BuiltIn {
    fn name(&self) -> String {
        self.0.to_string()
    }

    fn is_ready(&self) -> bool {
        true
    }

    fn open(&self, req: OpenRequest) -> crate::BoxFuture<Result<EngineSession, EngineError>> {
        let spec = self.0.clone();
        let pacer = self.1.clone();
        // The prototype, unless the spec was changed since it was built.
        let synthetic = self
            .2
            .as_ref()
            .filter(|(built, _, _)| *built == self.0)
            .map(|(_, gen, info)| (gen.clone(), info.clone()));
        Box::pin(async move {
            match spec {
                EngineSpec::Demo => {
                    let demo = Demo::new(&req.config);
                    let (session, side) = EngineSession::pair(demo.info());
                    tokio::spawn(paced::run(pacer, demo, req.sink, side));
                    Ok(session)
                }
                EngineSpec::Synthetic { rate_hz, bytes } => {
                    let (gen, info) = synthetic.unwrap_or_else(|| {
                        let gen = Synthetic::new(rate_hz, bytes);
                        let info = gen.info();
                        (gen, info)
                    });
                    let (session, side) = EngineSession::pair(info);
                    tokio::spawn(paced::run(pacer, gen, req.sink, side));
                    Ok(session)
                }
                EngineSpec::Unix(_) | EngineSpec::Tcp(_) => Err(EngineError::NotReady),
            }
        })
    }
}

/// Builds the engine a spec names. External engines are built by the
/// `external` module once it is wired (they need a listener).
pub fn built_in(spec: &EngineSpec) -> Option<Arc<dyn Engine>> {
    match spec {
        EngineSpec::Demo | EngineSpec::Synthetic { .. } => {
            Some(Arc::new(BuiltIn::new(spec.clone())))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        assert_eq!("demo".parse(), Ok(EngineSpec::Demo));
        assert_eq!(
            "synthetic:200000:4096".parse(),
            Ok(EngineSpec::Synthetic {
                rate_hz: 200000.0,
                bytes: 4096
            })
        );
        assert_eq!(
            "unix:/tmp/e.sock".parse(),
            Ok(EngineSpec::Unix("/tmp/e.sock".into()))
        );
        assert_eq!(
            "tcp:127.0.0.1:9000".parse(),
            Ok(EngineSpec::Tcp("127.0.0.1:9000".into()))
        );
        for bad in [
            "",
            "demo:1",
            "synthetic",
            "synthetic:0:1",
            "synthetic:x:1",
            "synthetic:1:-1",
            "unix:",
            "tcp:nope",
            "gpu",
        ] {
            assert!(bad.parse::<EngineSpec>().is_err(), "{bad}");
        }
    }
}
