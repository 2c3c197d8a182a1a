//! Windows: IOCP has no fd libuv could watch, and libuv's own symbols are
//! not linkable from an addon there, so the waiter thread wakes the JS
//! thread through a Node-API threadsafe function instead.

use std::ffi::c_void;
use std::ptr;

use napi::sys;

use super::OnReadable;

/// A threadsafe function whose JS-thread callback reaches `T`.
pub struct ThreadWake<T: OnReadable> {
    env: sys::napi_env,
    tsfn: sys::napi_threadsafe_function,
    _target: std::marker::PhantomData<T>,
}

/// The handle the waiter thread calls through.
struct Notifier(sys::napi_threadsafe_function);

// SAFETY: threadsafe functions exist to be called from other threads;
// Node-API synchronises `napi_call_threadsafe_function` internally.
unsafe impl Send for Notifier {}

impl Notifier {
    fn notify(&self) {
        // After `close` this returns napi_closing: nothing to wake.
        // SAFETY: see `impl Send for Notifier`.
        unsafe { sys::napi_call_threadsafe_function(self.0, ptr::null_mut(), sys::ThreadsafeFunctionCallMode::nonblocking) };
    }
}

impl<T: OnReadable> ThreadWake<T> {
    /// `target` is owned by the threadsafe function and dropped when it is
    /// finalized (after `close`).
    pub fn start(env: sys::napi_env, target: Box<T>) -> napi::Result<ThreadWake<T>> {
        let name = "muxnet waiter";
        let (mut js_name, mut tsfn) = (ptr::null_mut(), ptr::null_mut());
        let target = Box::into_raw(target).cast::<c_void>();
        // SAFETY: `env` is live on this thread; `target` stays valid until
        // the finalizer frees it; no JS function is needed with call_js.
        let status = unsafe {
            sys::napi_create_string_utf8(env, name.as_ptr().cast(), name.len() as isize, &mut js_name);
            sys::napi_create_threadsafe_function(
                env,
                ptr::null_mut(),
                ptr::null_mut(),
                js_name,
                0,
                1,
                target,
                Some(finalize::<T>),
                target,
                Some(call_js::<T>),
                &mut tsfn,
            )
        };
        if status != sys::Status::napi_ok {
            // SAFETY: creation failed, so the finalizer will never run.
            drop(unsafe { Box::from_raw(target.cast::<T>()) });
            return Err(napi::Error::from_reason(format!("napi_create_threadsafe_function failed ({status})")));
        }
        Ok(ThreadWake { env, tsfn, _target: std::marker::PhantomData })
    }

    pub fn notifier(&self) -> Box<dyn Fn() + Send> {
        let notifier = Notifier(self.tsfn);
        Box::new(move || notifier.notify())
    }

    pub fn set_ref(&self, on: bool) {
        // SAFETY: the function is live (not yet released) on its own env.
        unsafe {
            if on {
                sys::napi_ref_threadsafe_function(self.env, self.tsfn);
            } else {
                sys::napi_unref_threadsafe_function(self.env, self.tsfn);
            }
        }
    }

    pub fn close(self) {
        // SAFETY: released exactly once; Node finalizes it afterwards.
        unsafe { sys::napi_release_threadsafe_function(self.tsfn, sys::ThreadsafeFunctionReleaseMode::abort) };
    }
}

unsafe extern "C" fn call_js<T: OnReadable>(env: sys::napi_env, _js: sys::napi_value, context: *mut c_void, _data: *mut c_void) {
    // A null env means the function is being torn down.
    if env.is_null() {
        return;
    }
    // SAFETY: `context` is the Box<T> made in `start`, freed only by
    // `finalize`, which runs after the last call.
    unsafe { &*context.cast::<T>() }.on_readable();
}

unsafe extern "C" fn finalize<T: OnReadable>(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the Box<T> made in `start`; Node calls this once.
    let target = unsafe { Box::from_raw(data.cast::<T>()) };
    // Dropping the target drops the reactor: no panic may unwind into Node.
    if let Err(panic) = crate::barrier::catch(|| drop(target)) {
        crate::barrier::warn(&panic);
    }
}
