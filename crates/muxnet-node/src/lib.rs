//! muxnet's N-API binding: a muxnet-core `Reactor` living inside Node's
//! event loop. One JS call per reactor turn carries the whole batch of
//! events as records in an `Int32Array`, with received bytes in a shared
//! slab `Buffer`. Methods return a token or byte count, or a negative
//! errno that the TypeScript layer turns into a Node-style `Error`.

mod address;
mod barrier;
mod codec;
mod driver;
mod errno;
mod fast_path;
mod given;
mod js;
mod reactor;
mod records;
mod wake;
