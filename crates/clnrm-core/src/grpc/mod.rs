//! gRPC as `grpc` steps use it (SPEC §17): messages described by `.proto` files that
//! clnrm compiles itself (`protox`: no `protoc` to install), their JSON form (the
//! proto3 JSON mapping, `prost-reflect`), and unary and server-streaming calls over
//! HTTP/2 (tonic's client on a hyper connection) with metadata and a deadline; or
//! the descriptors from the server's reflection service, when a step names no file.

pub mod call;
pub mod proto;
pub mod reflect;

pub use call::{Answer, Call, CallError};
pub use proto::{ProtoError, Protos};
pub use reflect::{ReflectError, descriptors};
