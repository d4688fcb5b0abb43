//! Reading a test definition from disk without ever hanging or panicking: only
//! regular files, at most [`MAX_FILE_BYTES`], valid UTF-8.

use crate::diag::{Code, Diagnostic, Source, Span};
use crate::discover::io_reason;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

/// The largest test definition accepted.
pub const MAX_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Reads `path` as a source named `display`.
pub fn load(path: &Path, display: &str) -> Result<Arc<Source>, Box<Diagnostic>> {
    let fail = |code: Code, msg: String| {
        Box::new(Diagnostic::error(code, msg).in_file(display.to_owned()))
    };
    let meta = std::fs::metadata(path).map_err(|e| {
        fail(
            Code::Io,
            format!("cannot read {display}: {}", io_reason(&e)),
        )
    })?;
    if meta.is_dir() {
        let d = fail(
            Code::Io,
            format!("cannot read {display}: it is a directory"),
        );
        return Err(Box::new(d.help(
            "rename the directory; names ending in .clnrm.toml are test definitions",
        )));
    }
    if !meta.is_file() {
        return Err(fail(
            Code::Io,
            format!("cannot read {display}: not a regular file"),
        ));
    }
    if meta.len() > MAX_FILE_BYTES {
        let mib = meta.len() as f64 / 1_048_576.0;
        let d = fail(
            Code::TooLarge,
            format!(
                "{display} is {mib:.1} MiB; test definitions are limited to {} MiB",
                MAX_FILE_BYTES / 1_048_576
            ),
        );
        return Err(Box::new(d.help(
            "split the file, or generate the repetitive part with a template loop",
        )));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| {
            fail(
                Code::Io,
                format!("cannot read {display}: {}", io_reason(&e)),
            )
        })?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok(Source::file(display, text)),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let bytes = e.into_bytes();
            let prefix = String::from_utf8_lossy(&bytes[..valid]).into_owned();
            let rest_of_line = String::from_utf8_lossy(&bytes[valid..])
                .lines()
                .next()
                .unwrap_or("")
                .to_owned();
            let src = Source::file(display, format!("{prefix}{rest_of_line}"));
            let d = Diagnostic::error(Code::NotUtf8, format!("{display} is not valid UTF-8"))
                .at(
                    &src,
                    Span::new(valid, valid + 1),
                    format!("invalid byte 0x{:02x} here", bytes[valid]),
                )
                .help("save the file as UTF-8");
            Err(Box::new(d))
        }
    }
}
