//! Descriptors from a server's reflection service (`grpc.reflection.v1`, else
//! `v1alpha`), for a step without `proto` files: the file that defines the service,
//! and the files it imports, asked for until none is missing (bounded).

use super::call::{CallError, connect};
use super::proto::Protos;
use prost::Message;
use prost_reflect::{DescriptorPool, prost_types};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// The most files a server's answers may hold.
const MAX_FILES: usize = 256;

/// The most bytes of descriptors a server's answers may hold.
const MAX_BYTES: usize = 16 << 20;

/// Why the server's reflection gave no descriptors.
#[derive(Debug, thiserror::Error)]
pub enum ReflectError {
    /// No answer at all.
    #[error(transparent)]
    Call(#[from] CallError),
    /// The server has no reflection service, or it refused.
    #[error("the server's reflection service answered {code}: {message}")]
    Status {
        /// The status code's name.
        code: &'static str,
        /// Its message.
        message: String,
    },
    /// An answer that is not what was asked for, or too much.
    #[error("the server's reflection service: {0}")]
    Answer(String),
}

#[derive(Clone, PartialEq, Message)]
struct Request {
    #[prost(string, tag = "1")]
    host: String,
    #[prost(oneof = "Asked", tags = "3, 4")]
    asked: Option<Asked>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Asked {
    #[prost(string, tag = "3")]
    FileByFilename(String),
    #[prost(string, tag = "4")]
    FileContainingSymbol(String),
}

#[derive(Clone, PartialEq, Message)]
struct Response {
    #[prost(oneof = "Answered", tags = "4, 7")]
    answered: Option<Answered>,
}

#[derive(Clone, PartialEq, prost::Oneof)]
enum Answered {
    #[prost(message, tag = "4")]
    Files(FileDescriptors),
    #[prost(message, tag = "7")]
    Error(ErrorAnswer),
}

#[derive(Clone, PartialEq, Message)]
struct FileDescriptors {
    #[prost(bytes = "vec", repeated, tag = "1")]
    file_descriptor_proto: Vec<Vec<u8>>,
}

#[derive(Clone, PartialEq, Message)]
struct ErrorAnswer {
    #[prost(int32, tag = "1")]
    error_code: i32,
    #[prost(string, tag = "2")]
    error_message: String,
}

/// The descriptors of `service` (a full name) and of every file its file imports,
/// from the reflection service of the server at `addr` (`authority` as the step
/// names it), each request within `timeout`.
pub async fn descriptors(
    addr: SocketAddr,
    authority: &str,
    service: &str,
    timeout: Duration,
) -> Result<Protos, ReflectError> {
    let mut files: BTreeMap<String, prost_types::FileDescriptorProto> = BTreeMap::new();
    let mut bytes = 0;
    let mut version = None;
    let mut asked = Asked::FileContainingSymbol(service.to_owned());
    for _ in 0..MAX_FILES {
        let (found, v) = ask(addr, authority, &asked, version, timeout).await?;
        version = Some(v);
        for raw in found {
            bytes += raw.len();
            if bytes > MAX_BYTES || files.len() >= MAX_FILES {
                return Err(ReflectError::Answer(format!(
                    "more than {MAX_FILES} files or {} MiB of descriptors",
                    MAX_BYTES >> 20
                )));
            }
            let file = prost_types::FileDescriptorProto::decode(raw.as_slice()).map_err(|e| {
                ReflectError::Answer(format!("a file descriptor that does not decode: {e}"))
            })?;
            files.insert(file.name().to_owned(), file);
        }
        // The first import no answer has given yet.
        let missing = files
            .values()
            .flat_map(|f| f.dependency.iter())
            .find(|d| !files.contains_key(*d))
            .cloned();
        match missing {
            // Asked already and not given: the server does not have it.
            Some(name) if asked == Asked::FileByFilename(name.clone()) => {
                return Err(ReflectError::Answer(format!(
                    "it does not give the file {name}, which its files import"
                )));
            }
            Some(name) => asked = Asked::FileByFilename(name),
            None => return pool_of(files),
        }
    }
    Err(ReflectError::Answer(format!(
        "its files import more than {MAX_FILES} others"
    )))
}

/// The descriptors of `files`.
fn pool_of(
    files: BTreeMap<String, prost_types::FileDescriptorProto>,
) -> Result<Protos, ReflectError> {
    let mut pool = DescriptorPool::new();
    pool.add_file_descriptor_protos(files.into_values())
        .map_err(|e| ReflectError::Answer(format!("its descriptors do not hold together: {e}")))?;
    Ok(Protos::from_pool(pool))
}

/// One question on a stream of its own: the files of the answer, and the version of
/// the service that answered (`true`: v1).
async fn ask(
    addr: SocketAddr,
    authority: &str,
    asked: &Asked,
    version: Option<bool>,
    timeout: Duration,
) -> Result<(Vec<Vec<u8>>, bool), ReflectError> {
    let versions: &[bool] = match version {
        Some(v) => {
            if v {
                &[true]
            } else {
                &[false]
            }
        }
        None => &[true, false],
    };
    let mut last = None;
    for &v1 in versions {
        let path = if v1 {
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
        } else {
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
        };
        let request = Request {
            host: String::new(),
            asked: Some(asked.clone()),
        };
        let answer = tokio::time::timeout(timeout, async {
            let (mut grpc, connection) = connect(addr, authority).await?;
            let result: Result<Result<Option<Answered>, tonic::Status>, CallError> = async {
                grpc.ready()
                    .await
                    .map_err(|e| CallError::Broken(format!("the connection closed: {e}")))?;
                let path = hyper::http::uri::PathAndQuery::from_static(path);
                let stream = futures_util::stream::iter([request]);
                let response = match grpc
                    .streaming(
                        tonic::Request::new(stream),
                        path,
                        Prost::<Request, Response>::default(),
                    )
                    .await
                {
                    Ok(r) => r,
                    Err(status) => return Ok(Err(super::call::sent_by_server(status)?)),
                };
                let mut stream = response.into_inner();
                match stream.message().await {
                    Ok(m) => Ok(Ok(m.and_then(|m| m.answered))),
                    Err(status) => Ok(Err(super::call::sent_by_server(status)?)),
                }
            }
            .await;
            connection.abort();
            result
        })
        .await
        .map_err(|_| CallError::Timeout(timeout))??;
        match answer {
            Ok(Some(Answered::Files(f))) => return Ok((f.file_descriptor_proto, v1)),
            Ok(Some(Answered::Error(e))) => {
                return Err(ReflectError::Status {
                    code: super::call::code_name(e.error_code),
                    message: e.error_message,
                });
            }
            Ok(None) => {
                return Err(ReflectError::Answer(
                    "it answered with no files and no error".into(),
                ));
            }
            // Not this version: the other one, if there is one to try.
            Err(status) if status.code() == tonic::Code::Unimplemented => last = Some(status),
            Err(status) => {
                return Err(ReflectError::Status {
                    code: super::call::code_name(status.code() as i32),
                    message: status.message().to_owned(),
                });
            }
        }
    }
    let status = last.unwrap_or_else(|| tonic::Status::unimplemented(""));
    Err(ReflectError::Status {
        code: super::call::code_name(status.code() as i32),
        message: if status.message().is_empty() {
            "the server has no reflection service".to_owned()
        } else {
            status.message().to_owned()
        },
    })
}

/// Prost messages `E` out and `D` in.
struct Prost<E, D>(std::marker::PhantomData<(E, D)>);

impl<E, D> Default for Prost<E, D> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

struct Enc<E>(std::marker::PhantomData<E>);
struct Dec<D>(std::marker::PhantomData<D>);

impl<E, D> Codec for Prost<E, D>
where
    E: Message + Send + 'static,
    D: Message + Default + Send + 'static,
{
    type Encode = E;
    type Decode = D;
    type Encoder = Enc<E>;
    type Decoder = Dec<D>;

    fn encoder(&mut self) -> Enc<E> {
        Enc(std::marker::PhantomData)
    }

    fn decoder(&mut self) -> Dec<D> {
        Dec(std::marker::PhantomData)
    }
}

impl<E: Message> Encoder for Enc<E> {
    type Item = E;
    type Error = tonic::Status;

    fn encode(&mut self, item: E, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        item.encode(dst)
            .map_err(|e| super::call::local(e.to_string()))
    }
}

impl<D: Message + Default> Decoder for Dec<D> {
    type Item = D;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<D>, tonic::Status> {
        D::decode(src)
            .map(Some)
            .map_err(|e| super::call::local(e.to_string()))
    }
}
