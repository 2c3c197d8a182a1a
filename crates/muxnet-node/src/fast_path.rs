//! The calls made once per message, `write` (TCP) and `send` (UDP), as
//! plain Node-API functions bound to one reactor. A napi-rs class method
//! pays for a borrow registry (a global lock and an allocation) on every
//! call: 5–6 % of an echo server's CPU in `perf`.

use std::cell::RefCell;
use std::ffi::c_void;
use std::io;
use std::net::SocketAddr;
use std::rc::{Rc, Weak};

use napi::bindgen_prelude::{Env, Result, Unknown};
use napi::sys;

use crate::address::parse_addr;
use crate::barrier;
use crate::driver::{with_state, Shared, State};
use crate::errno::code;
use crate::js;

type Callback = unsafe extern "C" fn(sys::napi_env, sys::napi_callback_info) -> sys::napi_value;

/// A JS function running `callback` on the reactor behind `state`; it holds
/// the reactor weakly, so a closed reactor answers `EBADF`.
pub fn bind<'env>(env: Env, state: &Shared, name: &str, callback: Callback) -> Result<Unknown<'env>> {
    let data = Box::into_raw(Box::new(Rc::downgrade(state)));
    match js::function(env.raw(), name, Some(callback), data.cast(), Some(release)) {
        // SAFETY: `func` was just created in `env`.
        Ok(func) => Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), func) }),
        Err(e) => {
            // SAFETY: the function was not made, so nothing else owns `data`.
            drop(unsafe { Box::from_raw(data) });
            Err(e)
        }
    }
}

unsafe extern "C" fn release(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the Box made by `bind`; Node-API finalizes once.
    drop(unsafe { Box::from_raw(data.cast::<Weak<RefCell<State>>>()) });
}

/// Runs `f` on the bound reactor and returns its count or negative errno.
///
/// # Safety
/// `data` must be the `data` of a function made by `bind`, called now.
unsafe fn run(env: sys::napi_env, data: *mut c_void, f: impl FnOnce(&mut State) -> io::Result<usize>) -> sys::napi_value {
    // SAFETY: per this function's contract the Box lives until the function
    // is collected, which cannot happen while it runs.
    let weak = unsafe { &*data.cast::<Weak<RefCell<State>>>() };
    let result = match weak.upgrade() {
        Some(state) => code(with_state(&state, f)),
        None => -(crate::errno::uv::EBADF as i64),
    };
    js::number(env, result as f64)
}

fn type_error(env: sys::napi_env, signature: &str) -> sys::napi_value {
    js::throw_type_error(env, signature);
    std::ptr::null_mut()
}

/// Runs a hot call's body; a panic is thrown as a JS error.
fn guarded(env: sys::napi_env, body: impl FnOnce() -> sys::napi_value) -> sys::napi_value {
    barrier::catch(body).unwrap_or_else(|panic| {
        js::throw_error(env, &panic, barrier::PANIC_CODE);
        std::ptr::null_mut()
    })
}

/// `write(token, data)`: see `Reactor::writer`.
pub unsafe extern "C" fn write(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: forwarded from Node-API's call.
    guarded(env, || unsafe { write_unguarded(env, info) })
}

/// `send(token, data[, host, port])`: see `Reactor::sender`.
pub unsafe extern "C" fn send(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: forwarded from Node-API's call.
    guarded(env, || unsafe { send_unguarded(env, info) })
}

unsafe fn write_unguarded(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: called by Node-API with this call's env and info.
    let ([token, data], bound) = unsafe { js::call_args::<2>(env, info) };
    // SAFETY: no JavaScript runs while `bytes` lives (the reactor is plain Rust).
    let (Some(token), Some(bytes)) = (js::token_of(env, token), unsafe { js::bytes_of(env, data) }) else {
        return type_error(env, "write(token: number, data: Uint8Array)");
    };
    // SAFETY: `bound` is this function's data, from `bind`.
    unsafe { run(env, bound, |state| state.reactor.write(token, bytes)) }
}

/// `sendLater(token, data[, host, port])`: see `Reactor::queuer`.
pub unsafe extern "C" fn send_later(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: forwarded from Node-API's call.
    guarded(env, || unsafe { datagram_unguarded(env, info, Datagram::Later) })
}

unsafe fn send_unguarded(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: forwarded from Node-API's call.
    unsafe { datagram_unguarded(env, info, Datagram::Now) }
}

/// Whether a datagram leaves now or at the next `flushSends`.
#[derive(Clone, Copy)]
enum Datagram {
    Now,
    Later,
}

const SEND_SIGNATURE: &str = "send(token: number, data: Uint8Array, host?: string | number, port?: number)";

/// Where a datagram goes, as JavaScript named it.
enum To {
    /// The connected peer.
    Peer,
    /// An address in text, parsed (or why it is none).
    Text(io::Result<SocketAddr>),
    /// The sender at this index of the last batch's `peers`, and the port.
    BatchHost(u32, u32),
}

unsafe fn datagram_unguarded(env: sys::napi_env, info: sys::napi_callback_info, when: Datagram) -> sys::napi_value {
    // SAFETY: called by Node-API with this call's env and info.
    let ([token, data, host, port], bound) = unsafe { js::call_args::<4>(env, info) };
    // SAFETY: no JavaScript runs while `bytes` lives (the reactor is plain Rust).
    let (Some(token), Some(bytes)) = (js::token_of(env, token), unsafe { js::bytes_of(env, data) }) else {
        return type_error(env, SEND_SIGNATURE);
    };
    let to = match js::type_of(env, host) {
        sys::ValueType::napi_undefined => To::Peer,
        kind @ (sys::ValueType::napi_string | sys::ValueType::napi_number) => {
            let Some(port) = js::u32_of(env, port) else {
                return type_error(env, SEND_SIGNATURE);
            };
            if kind == sys::ValueType::napi_number {
                let Some(index) = js::u32_of(env, host) else {
                    return type_error(env, SEND_SIGNATURE);
                };
                To::BatchHost(index, port)
            } else {
                // An IP address in text fits; a string that does not is no address (EINVAL, as any other).
                let mut text = [0u8; 64];
                let text = js::str_of(env, host, &mut text).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not an IP address"));
                To::Text(text.and_then(|t| parse_addr(t, port)))
            }
        }
        _ => return type_error(env, SEND_SIGNATURE),
    };
    // SAFETY: `bound` is this function's data, from `bind`.
    unsafe {
        run(env, bound, |state| {
            let to = match to {
                To::Peer => None,
                To::Text(addr) => Some(addr?),
                To::BatchHost(index, port) => Some(state.batch_host(index, port)?),
            };
            let r = &mut state.reactor;
            match (when, to) {
                (Datagram::Now, Some(to)) => r.send_to(token, bytes, to),
                (Datagram::Now, None) => r.send(token, bytes),
                (Datagram::Later, to) => r.send_later(token, bytes, to),
            }
        })
    }
}
