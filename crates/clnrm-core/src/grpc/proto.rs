//! `.proto` files compiled into the descriptors a call needs: a method by its full
//! name (`pkg.Service/Method`), a request from JSON, a response as JSON.

use prost_reflect::{DescriptorPool, DynamicMessage, MethodDescriptor};
use std::path::{Path, PathBuf};

/// Why `.proto` files could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    /// A file did not compile (or could not be read): the compiler's words.
    #[error("{file}: {message}")]
    Compile {
        /// The file, as the step names it.
        file: String,
        /// What the compiler said.
        message: String,
        /// Where in the file, when the compiler said: (line, column), 1-based.
        at: Option<(usize, usize)>,
    },
    /// The method is not `pkg.Service/Method`.
    #[error("method \"{0}\" is not of the form `package.Service/Method`")]
    MethodSyntax(String),
    /// No such service in the files.
    #[error("no service \"{service}\" in {where_}{}", hint(.closest))]
    NoService {
        /// The service asked for.
        service: String,
        /// Where it was looked for.
        where_: String,
        /// The closest name there is.
        closest: Option<String>,
    },
    /// The service has no such method.
    #[error("service \"{service}\" has no method \"{method}\"{}", hint(.closest))]
    NoMethod {
        /// The service.
        service: String,
        /// The method asked for.
        method: String,
        /// The closest name there is.
        closest: Option<String>,
    },
    /// The request's JSON is not a message of the method's input type.
    #[error("the request is not a {message}: {why}")]
    Request {
        /// The input type's full name.
        message: String,
        /// What the JSON mapping said.
        why: String,
    },
}

fn hint(closest: &Option<String>) -> String {
    closest
        .as_ref()
        .map(|c| format!("; did you mean \"{c}\"?"))
        .unwrap_or_default()
}

/// Compiled descriptors.
#[derive(Clone, Debug)]
pub struct Protos {
    pool: DescriptorPool,
    /// The files read (those named and those they import), for a key of their text.
    read: Vec<PathBuf>,
}

impl Protos {
    /// Compiles `files` (paths relative to `base`, the test file's directory), their
    /// imports included: looked for from `base` (as `protoc -I` would), then beside
    /// each file named outside it.
    pub fn compile(base: &Path, files: &[String]) -> Result<Self, ProtoError> {
        let base = if base.as_os_str().is_empty() {
            Path::new(".")
        } else {
            base
        };
        let real = |p: &Path| {
            p.canonicalize()
                .or_else(|_| std::path::absolute(p))
                .unwrap_or_else(|_| p.to_path_buf())
        };
        let base_dir = real(base);
        let mut includes: Vec<PathBuf> = vec![base_dir.clone()];
        for file in files {
            let path = real(&base.join(file));
            if let Some(dir) = path.parent().filter(|d| !d.starts_with(&base_dir))
                && !includes.iter().any(|i| i == dir)
            {
                includes.push(dir.to_path_buf());
            }
        }
        let mut compiler = protox::Compiler::new(&includes).map_err(|e| ProtoError::Compile {
            file: base.display().to_string(),
            message: e.to_string(),
            at: None,
        })?;
        for file in files {
            compiler
                .open_file(real(&base.join(file)))
                .map_err(|e| compile_error(file, &e))?;
        }
        let read = compiler
            .files()
            .filter_map(|f| f.path().map(Path::to_path_buf))
            .collect();
        Ok(Self {
            pool: compiler.descriptor_pool(),
            read,
        })
    }

    /// The files compiled: those named and those they import (from disk).
    pub fn files_read(&self) -> &[PathBuf] {
        &self.read
    }

    /// Descriptors made elsewhere (from a server's reflection service).
    pub fn from_pool(pool: DescriptorPool) -> Self {
        Self {
            pool,
            read: Vec::new(),
        }
    }

    /// The method `name` (`pkg.Service/Method`); `where_` says where it was looked
    /// for (for the error).
    pub fn method(&self, name: &str, where_: &str) -> Result<MethodDescriptor, ProtoError> {
        let (service, method) =
            split_method(name).ok_or_else(|| ProtoError::MethodSyntax(name.to_owned()))?;
        let Some(svc) = self.pool.get_service_by_name(service) else {
            let names: Vec<String> = self
                .pool
                .services()
                .map(|s| s.full_name().to_owned())
                .collect();
            return Err(ProtoError::NoService {
                service: service.to_owned(),
                where_: where_.to_owned(),
                closest: closest(service, &names),
            });
        };
        svc.methods().find(|m| m.name() == method).ok_or_else(|| {
            let names: Vec<String> = svc.methods().map(|m| m.name().to_owned()).collect();
            ProtoError::NoMethod {
                service: service.to_owned(),
                method: method.to_owned(),
                closest: closest(method, &names),
            }
        })
    }
}

/// `package.Service/Method` as (`package.Service`, `Method`).
pub fn split_method(name: &str) -> Option<(&str, &str)> {
    name.split_once('/')
        .filter(|(s, m)| !s.is_empty() && !m.is_empty() && !m.contains('/'))
}

/// The request of `method` from its JSON (proto3's JSON mapping; unknown fields are
/// an error).
pub fn request(
    method: &MethodDescriptor,
    json: &serde_json::Value,
) -> Result<DynamicMessage, ProtoError> {
    let input = method.input();
    DynamicMessage::deserialize(input.clone(), json).map_err(|e| ProtoError::Request {
        message: input.full_name().to_owned(),
        why: e.to_string(),
    })
}

/// A message as JSON (proto3's JSON mapping, fields as the `.proto` names them in
/// camelCase, defaults left out); an error for what the mapping refuses (an `Any` of
/// an unknown type, a time out of range).
pub fn to_json(message: &DynamicMessage) -> Result<serde_json::Value, serde_json::Error> {
    serde_json::to_value(message)
}

/// The closest of `names` to `word`, when close enough to be a typo.
fn closest(word: &str, names: &[String]) -> Option<String> {
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    crate::model::reader::closest(word, &names).map(str::to_owned)
}

/// A compiler error with its place in the file, when it says.
fn compile_error(file: &str, e: &protox::Error) -> ProtoError {
    use miette::Diagnostic;
    let at = (|| {
        let label = e.labels()?.next()?;
        let source = e.source_code()?;
        let contents = source.read_span(label.inner(), 0, 0).ok()?;
        Some((contents.line() + 1, contents.column() + 1))
    })();
    // An error in a file it imports is that file's (and its line is); one in the file
    // named keeps the name as written.
    let named = e
        .file()
        .filter(|n| !Path::new(file).ends_with(n))
        .map_or_else(|| file.to_owned(), str::to_owned);
    ProtoError::Compile {
        file: named,
        message: e.to_string(),
        at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GREETER: &str = r#"syntax = "proto3";
package demo.v1;
import "common.proto";
message HelloRequest { string name = 1; int32 times = 2; }
message HelloReply { string message = 1; demo.v1.Meta meta = 2; }
service Greeter {
  rpc SayHello(HelloRequest) returns (HelloReply);
  rpc SayHellos(HelloRequest) returns (stream HelloReply);
}
"#;

    fn dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap_or_else(|e| panic!("{e}"));
        }
        dir
    }

    #[test]
    fn a_method_is_found_with_its_imports_and_its_request_read_from_json() {
        let d = dir(&[
            ("greeter.proto", GREETER),
            (
                "common.proto",
                "syntax = \"proto3\";\npackage demo.v1;\nmessage Meta { string id = 1; }\n",
            ),
        ]);
        let protos =
            Protos::compile(d.path(), &["greeter.proto".into()]).unwrap_or_else(|e| panic!("{e}"));
        let m = protos
            .method("demo.v1.Greeter/SayHellos", "greeter.proto")
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(m.is_server_streaming());
        let req = request(&m, &serde_json::json!({"name": "ada", "times": 2}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            to_json(&req).ok(),
            Some(serde_json::json!({"name": "ada", "times": 2}))
        );
        let e = request(&m, &serde_json::json!({"nmae": "ada"})).err();
        assert!(
            e.as_ref()
                .is_some_and(|e| e.to_string().contains("demo.v1.HelloRequest")
                    && e.to_string().contains("nmae")),
            "{e:?}"
        );
        let e = protos
            .method("demo.v1.Greeter/SayHelo", "greeter.proto")
            .err();
        assert!(
            e.as_ref()
                .is_some_and(|e| e.to_string().contains("did you mean \"SayHello\"")),
            "{e:?}"
        );
        let e = protos
            .method("demo.v1.Greter/SayHello", "greeter.proto")
            .err();
        assert!(
            e.as_ref()
                .is_some_and(|e| e.to_string().contains("did you mean \"demo.v1.Greeter\"")),
            "{e:?}"
        );
        assert!(matches!(
            protos.method("SayHello", "greeter.proto"),
            Err(ProtoError::MethodSyntax(_))
        ));
    }

    #[test]
    fn a_file_above_the_test_files_directory_is_compiled_with_its_imports() {
        let d = dir(&[
            ("greeter.proto", GREETER),
            (
                "common.proto",
                "syntax = \"proto3\";\npackage demo.v1;\nmessage Meta { string id = 1; }\n",
            ),
        ]);
        let tests = d.path().join("tests");
        std::fs::create_dir_all(&tests).unwrap_or_else(|e| panic!("{e}"));
        let protos =
            Protos::compile(&tests, &["../greeter.proto".into()]).unwrap_or_else(|e| panic!("{e}"));
        assert!(protos.method("demo.v1.Greeter/SayHello", "x").is_ok());
        assert_eq!(protos.files_read().len(), 2, "{:?}", protos.files_read());
    }

    #[test]
    fn a_file_that_does_not_compile_says_where() {
        let d = dir(&[(
            "bad.proto",
            "syntax = \"proto3\";\nmessage A {\n  strin name = 1;\n}\n",
        )]);
        match Protos::compile(d.path(), &["bad.proto".into()]) {
            Err(ProtoError::Compile { file, at, .. }) => {
                assert_eq!(file, "bad.proto");
                assert_eq!(at.map(|(line, _)| line), Some(3), "{at:?}");
            }
            other => panic!("{other:?}"),
        }
        match Protos::compile(d.path(), &["missing.proto".into()]) {
            Err(ProtoError::Compile { file, .. }) => assert_eq!(file, "missing.proto"),
            other => panic!("{other:?}"),
        }
    }
}
