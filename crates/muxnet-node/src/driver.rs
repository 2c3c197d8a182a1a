//! Drives a muxnet-core `Reactor` from Node's loop: when the watched fd
//! turns readable, run one turn with a zero timeout on the JS thread and
//! hand the whole batch of events to JavaScript in one call.

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
#[cfg(unix)]
use std::rc::Weak;
#[cfg(unix)]
use std::sync::Arc;
use std::time::Duration;
#[cfg(unix)]
use std::time::Instant;

use muxnet_core::{Event, Reactor, ReadSpace};

use crate::barrier::{self, Injected};
use crate::errno::{setup_io, setup_napi, SetupError};
use crate::given::Holds;
use crate::js::{self, AsyncContext, Env, HandleScope, Persistent, Records, Slab, SlabCount, Value};
use crate::records::{self, encode};
#[cfg(unix)]
use crate::wake::loop_phase::{LoopPhase, OnPhase, Phase};
use crate::wake::waiter::Waiter;
use crate::wake::OnReadable;

/// Unix: a `uv_poll_t` on the poller's fd, or on a waiter's notify pipe.
#[cfg(unix)]
type Watch = crate::wake::fd_watch::FdWatch<Turn>;
/// Windows: a threadsafe function the waiter thread calls.
#[cfg(windows)]
type Watch = crate::wake::thread_wake::ThreadWake<Turn>;

const SLAB_REFILL_BELOW: usize = 128 * 1024;
const INITIAL_RECORDS: usize = 256;

/// How the JS thread learns that the backend has events.
pub enum Wakeup {
    /// libuv watches the backend's own fd (epoll/kqueue).
    Fd,
    /// A waiter thread blocks in the backend and then wakes the JS thread.
    Thread {
        waiter: Waiter,
        #[cfg(unix)]
        pipe: muxnet_core::SelfPipe,
        /// Writes `pipe` as the waiter does when something is ready.
        #[cfg(unix)]
        notify: Arc<muxnet_core::PipeWaker>,
        armed_at: Option<u64>,
    },
}

/// The JS values a reactor holds. Released in `shut_down`, while the env
/// is still alive: at exit, libuv may close our handle (and drop the
/// state) after Node has torn the env down.
struct JsSide {
    callback: Persistent,
    /// See [`JsSide::context`].
    context: Option<Rc<AsyncContext>>,
    slab: Slab,
    records: Records,
}

impl JsSide {
    /// The async context every call into JavaScript runs in, made at the
    /// first, inside a libuv callback: the context of no request. Made with
    /// the reactor, it took the `AsyncLocalStorage` store of whichever
    /// request made the process's first socket (or loaded muxnet).
    fn context(&mut self, env: Env) -> napi::Result<Rc<AsyncContext>> {
        if let Some(context) = &self.context {
            return Ok(context.clone());
        }
        let context = Rc::new(AsyncContext::new(env, "MUXNET_REACTOR")?);
        self.context = Some(context.clone());
        Ok(context)
    }
}

pub struct State {
    pub reactor: Reactor,
    pub env: Env,
    js: Option<JsSide>,
    slab_size: usize,
    /// Read slabs made and not yet collected.
    pub slabs: SlabCount,
    words: Vec<i32>,
    events: Vec<Event>,
    peers: Vec<String>,
    /// The address of each of `peers`.
    hosts: Vec<SocketAddr>,
    /// The hosts of the last batch JavaScript was given, by their index in
    /// its `peers` array: a reply names one by its index (see `batch_host`).
    batch_hosts: Vec<SocketAddr>,
    pub wakeup: Wakeup,
    watch: Option<Watch>,
    /// Calls just before and after each poll phase (see [`AroundPoll`]).
    #[cfg(unix)]
    around_poll: Vec<LoopPhase<AroundPoll>>,
    /// The test hook's next panic (see `Reactor.injectPanic`).
    pub injected: Option<Injected>,
    /// JavaScript has a batch it has not finished: the slots of sockets
    /// closed meanwhile wait for it (its events name them).
    dispatching: bool,
    /// A turn was asked for work a call outside a batch left for it (see `kick`).
    turn_asked: bool,
    /// The earliest time for the next look at the sockets (see `look_first`).
    #[cfg(unix)]
    next_look: Instant,
    /// What a look costs, as `look_first` counts it.
    #[cfg(unix)]
    look_cost: Duration,
    /// JavaScript has requests for libuv's pending queue (see [`PENDING_PHASE`]).
    pending_asked: bool,
    /// The rounds of it left after this turn's poll phase (see [`pending_rounds`]).
    rounds_left: usize,
    /// The given fds this reactor serves copies of.
    pub given: Holds,
}

pub type Shared = Rc<RefCell<State>>;

/// The uv callback's target: one turn per readable notification.
pub struct Turn(Shared);

impl OnReadable for Turn {
    fn on_readable(&self) {
        let env = self.0.borrow().env;
        let Ok(_scope) = HandleScope::open(env) else {
            return;
        };
        // Requests made since the last turn (an end() from a timer): libuv
        // runs its pending queue before the poll phase (on Unix, a
        // `LoopPhase` calls for it there).
        #[cfg(windows)]
        {
            self.0.borrow_mut().rounds_left = PENDING_ROUNDS;
            pending_phase(env, &self.0, PENDING_PHASE);
        }
        // What libuv reads a turn late comes in this poll phase, before the
        // other sockets' reads (see [`LATE_READS`]).
        pending_phase(env, &self.0, LATE_READS);
        // No borrow of the state may live across the JS call: the
        // callback writes, closes and connects through the same state.
        match barrier::catch(|| self.0.borrow_mut().run_turn()) {
            Ok(Ok(Some((call, parts)))) => hand_out(env, call, parts),
            Ok(Ok(None)) => {}
            // An env being torn down (a worker terminated) refuses every
            // call: there is no one left to tell.
            Ok(Err(e)) if e.status == napi::Status::PendingException => {}
            Ok(Err(e)) => barrier::warn(&format!("reactor turn failed: {e}")),
            Err(panic) => js::raise(env, &panic, barrier::PANIC_CODE),
        }
        // Requests the batch made: libuv runs them once the poll phase's
        // callbacks (and their ticks and promise jobs) are done, before the
        // immediates.
        pending_rounds(env, &self.0);
        if let Err(panic) = barrier::catch(|| self.0.borrow_mut().after_turn()) {
            js::raise(env, &panic, barrier::PANIC_CODE);
        }
    }
}

/// Makes a call into JavaScript in as many parts as it asks for, `parts`
/// at most: it returns `true` (or throws) after an event whose `nextTick`
/// callbacks and promise jobs must run before the next one's listeners, as
/// Node runs them after each of libuv's callbacks: each part is a callback
/// scope of its own. Called again with the next part's number, it goes on
/// from there. The bound keeps JavaScript that can no longer run (a worker
/// being terminated, throwing at each call) from holding the loop here.
fn hand_out(env: Env, (context, func, mut args): JsCall, parts: u32) {
    for part in 0..parts {
        let Ok(part) = js::int32(env, part as i32) else {
            return;
        };
        args[PART_ARG] = part;
        match context.call(func, &args) {
            Ok(Some(more)) if js::is_true(env, more) => {}
            // Handed to 'uncaughtException': the rest of the batch is still due.
            Ok(None) => {}
            _ => return,
        }
    }
}

/// Where the part number goes in a call (after the count, the records, the slab and the peers).
const PART_ARG: usize = 4;

impl State {
    pub fn new(env: Env, reactor: Reactor, callback: Value, slab_size: usize, use_thread: bool) -> Result<Shared, SetupError> {
        let slabs = SlabCount::default();
        let state = Rc::new(RefCell::new(State {
            env,
            js: Some(JsSide {
                callback: Persistent::new(env, callback).map_err(setup_napi)?,
                context: None,
                slab: Slab::new(env, slab_size, &slabs).map_err(setup_napi)?,
                records: Records::new(env, INITIAL_RECORDS * records::RECORD_WORDS as usize).map_err(setup_napi)?,
            }),
            slab_size,
            slabs,
            words: Vec::new(),
            events: Vec::new(),
            peers: Vec::new(),
            hosts: Vec::new(),
            batch_hosts: Vec::new(),
            wakeup: Wakeup::Fd,
            watch: None,
            #[cfg(unix)]
            around_poll: Vec::new(),
            injected: None,
            dispatching: false,
            turn_asked: false,
            #[cfg(unix)]
            next_look: Instant::now(),
            #[cfg(unix)]
            look_cost: Duration::MAX,
            pending_asked: false,
            rounds_left: PENDING_ROUNDS,
            given: Holds::default(),
            reactor,
        }));
        let (watch, wakeup) = Self::watch(env, &state, use_thread)?;
        // Idle until a handle asks to keep the process alive.
        watch.set_ref(false);
        #[cfg(unix)]
        let around_poll = [Phase::BeforePoll, Phase::AfterPoll]
            .into_iter()
            .map(|phase| LoopPhase::start(env, phase, AroundPoll { state: Rc::downgrade(&state), phase }))
            .collect::<napi::Result<Vec<_>>>()
            .map_err(setup_napi)?;
        {
            let mut st = state.borrow_mut();
            #[cfg(unix)]
            {
                st.around_poll = around_poll;
            }
            st.watch = Some(watch);
            st.wakeup = wakeup;
            st.after_turn();
        }
        Ok(state)
    }

    #[cfg(unix)]
    fn watch(env: Env, state: &Shared, use_thread: bool) -> Result<(Watch, Wakeup), SetupError> {
        let waker = state.borrow().reactor.backend().waker();
        let turn = Box::new(Turn(state.clone()));
        if !use_thread {
            let fd = state
                .borrow()
                .reactor
                .backend()
                .as_pollable()
                .map(|p| p.pollable_handle())
                .ok_or_else(|| setup_napi(napi::Error::from_reason("backend has no pollable fd")))?;
            return Ok((crate::wake::fd_watch::FdWatch::start(env, fd, turn).map_err(setup_napi)?, Wakeup::Fd));
        }
        let waiter_failed = |e: io::Error| setup_io("cannot start the waiter thread", &e);
        let pipe = muxnet_core::SelfPipe::new().map_err(waiter_failed)?;
        let notify = Arc::new(pipe.waker().map_err(waiter_failed)?);
        let waiter_notify = notify.clone();
        // A full pipe already says "ready"; an error has no one to go to.
        let waiter = Waiter::spawn(waker, Box::new(move || drop(muxnet_core::Wake::wake(&*waiter_notify)))).map_err(waiter_failed)?;
        let watch = crate::wake::fd_watch::FdWatch::start(env, pipe.read_fd(), turn).map_err(setup_napi)?;
        Ok((watch, Wakeup::Thread { waiter, pipe, notify, armed_at: None }))
    }

    #[cfg(windows)]
    fn watch(env: Env, state: &Shared, _use_thread: bool) -> Result<(Watch, Wakeup), SetupError> {
        let waker = state.borrow().reactor.backend().waker();
        let watch = crate::wake::thread_wake::ThreadWake::start(env, Box::new(Turn(state.clone()))).map_err(setup_napi)?;
        let waiter = Waiter::spawn(waker, watch.notifier()).map_err(|e| setup_io("cannot start the waiter thread", &e))?;
        Ok((watch, Wakeup::Thread { waiter, armed_at: None }))
    }

    pub fn set_ref(&self, on: bool) {
        if let Some(watch) = &self.watch {
            watch.set_ref(on);
        }
    }

    /// `fd` is the reactor's own (see [`muxnet_core::Reactor::holds_fd`])
    /// or its waiter's notify pipe's.
    #[cfg(unix)]
    pub fn holds_fd(&self, fd: i32) -> bool {
        self.reactor.holds_fd(fd) || matches!(&self.wakeup, Wakeup::Thread { pipe, .. } if pipe.holds_fd(fd))
    }

    pub fn is_closed(&self) -> bool {
        self.js.is_none()
    }

    /// Stops watching and ends the waiter thread; sockets close when the
    /// reactor is dropped with the state.
    pub fn shut_down(&mut self) {
        if let Some(watch) = self.watch.take() {
            watch.close();
        }
        #[cfg(unix)]
        for phase in self.around_poll.drain(..) {
            phase.close();
        }
        self.wakeup = Wakeup::Fd;
        self.js = None;
        self.reactor.close_all();
        self.given.release_all();
    }

    /// Runs one turn and encodes it; returns the JS call to make, if any,
    /// and the most parts it may take (see [`hand_out`]).
    fn run_turn(&mut self) -> napi::Result<Option<(JsCall, u32)>> {
        let env = self.env;
        if self.injected == Some(Injected::Turn) {
            self.injected = None;
            panic!("injected panic in a reactor turn");
        }
        let Some(js) = &mut self.js else {
            return Ok(None);
        };
        #[cfg(unix)]
        if let Wakeup::Thread { pipe, .. } = &self.wakeup {
            pipe.drain();
        }
        if let Wakeup::Thread { armed_at, .. } = &mut self.wakeup {
            *armed_at = None;
        }
        self.turn_asked = false;
        // A fresh slab when this one is nearly full, or was detached by JS.
        if js.slab.free() < SLAB_REFILL_BELOW || js.slab.bytes()?.is_none() {
            js.slab = Slab::new(env, self.slab_size, &self.slabs)?;
        }
        let used = js.slab.used;
        let bytes = js.slab.bytes()?.ok_or_else(|| napi::Error::from_reason("read slab detached"))?;
        let mut space = ReadSpace::new(bytes, used);
        self.events.clear();
        let result = self.reactor.turn(&mut space, &mut self.events, Some(Duration::ZERO));
        let read = space.pos() - used;
        js.slab.used = used + read;
        encode(&self.events, result.err(), &mut self.words, &mut self.peers, &mut self.hosts);
        if self.words.is_empty() {
            return Ok(None);
        }
        // In step with the `peers` array JavaScript gets now (and keeps until the next batch).
        std::mem::swap(&mut self.batch_hosts, &mut self.hosts);
        if js.records.capacity() < self.words.len() || js.records.fill(&self.words)?.is_none() {
            js.records = Records::new(env, self.words.len().max(js.records.capacity() * 2))?;
            js.records.fill(&self.words)?;
        }
        self.dispatching = true;
        let peers = if self.peers.is_empty() { js::undefined(env)? } else { js::string_array(env, &self.peers)? };
        let records = self.words.len() / records::RECORD_WORDS as usize;
        let count = js::int32(env, records as i32)?;
        // Each part hands out a record or a piece of a read (a byte at
        // least: an `onread` buffer's fill), and a read going on may end a
        // part more; one to spare. JavaScript is told, and lets a read go on
        // after the ticks only while the parts left can take the batch's
        // rest (a piece may come from an earlier turn's read). With one part
        // a record, it had to hand the rest of a read out at once too often.
        let parts = u32::try_from(records.saturating_add(read)).unwrap_or(u32::MAX).saturating_mul(2).saturating_add(1);
        // The part number is set by `hand_out`, call by call.
        let args = vec![count, js.records.value()?, js.slab.value()?, peers, count, js::int32(env, parts.min(i32::MAX as u32) as i32)?];
        Ok(Some(((js.context(env)?, js.callback.value()?, args), parts)))
    }
}

/// A reactor's calls around each poll phase of Node's loop.
#[cfg(unix)]
pub struct AroundPoll {
    state: Weak<RefCell<State>>,
    phase: Phase,
}

#[cfg(unix)]
impl OnPhase for AroundPoll {
    fn on_phase(&self, sleeps: bool) {
        let Some(state) = self.state.upgrade() else {
            return;
        };
        if let Phase::BeforePoll = self.phase {
            state.borrow_mut().rounds_left = PENDING_ROUNDS;
        }
        if state.borrow().pending_asked {
            let env = state.borrow().env;
            let Ok(_scope) = HandleScope::open(env) else {
                return;
            };
            match self.phase {
                // libuv's pending queue has just run: requests made since
                // the last poll phase (an end() from a timer, an immediate).
                Phase::BeforePoll => pending_phase(env, &state, PENDING_PHASE),
                // libuv runs it again after the poll phase: requests that
                // other handles' callbacks made (an end() from an fs
                // callback, a worker's message), and those made there.
                Phase::AfterPoll => {
                    pending_phase(env, &state, LATE_READS);
                    pending_rounds(env, &state)
                }
            }
        }
        if !sleeps {
            if let Phase::BeforePoll = self.phase {
                if let Err(panic) = barrier::catch(|| state.borrow_mut().look_first()) {
                    barrier::warn(&panic);
                }
            }
        }
    }
}

/// A call into JavaScript: its async context, the function, the arguments.
type JsCall = (Rc<AsyncContext>, Value, Vec<Value>);

/// The count the JS callback gets in libuv's closing phase (see
/// [`in_closing_phase`]): no batch, the time to emit what node:net emits
/// from its handles' close callbacks.
#[cfg(unix)]
const CLOSING_PHASE: i32 = -1;

/// The count the JS callback gets where libuv runs its pending queue: no
/// batch, the time to complete what node:net completes from there (a
/// shutdown's callback: `end()`'s FIN and `'finish'`), at the start of a
/// turn, before its poll phase ...
const PENDING_PHASE: i32 = -2;
/// ... and after the poll phase's callbacks, before the immediates.
const PENDING_AFTER_POLL: i32 = -3;
/// The count it gets for what libuv reads a loop turn late (an 'end' that
/// came with its bytes): before the batch of the next turn's poll phase, or
/// after that phase if no batch came; not a round of the pending queue, and
/// the requests stay asked for.
const LATE_READS: i32 = -4;

/// Calls the reactor's JS callback with `phase`, each request a part of
/// its own, if it asked for one.
fn pending_phase(env: Env, state: &Shared, phase: i32) {
    match barrier::catch(|| state.borrow_mut().pending_phase_call(phase)) {
        Ok(Ok(Some(call))) => hand_out(env, call, u32::MAX),
        Ok(Ok(None)) => {}
        Ok(Err(e)) if e.status == napi::Status::PendingException => {}
        Ok(Err(e)) => barrier::warn(&format!("pending-phase call failed: {e}")),
        Err(panic) => js::raise(env, &panic, barrier::PANIC_CODE),
    }
}

/// libuv's runs of its pending queue after the poll phase: while requests
/// come (one's callback ends another socket), 8 rounds at most in the turn,
/// after the batch and the check handle together (the rest waits for the
/// next turn's start, after the immediates).
fn pending_rounds(env: Env, state: &Shared) {
    loop {
        {
            let mut state = state.borrow_mut();
            if !state.pending_asked || state.rounds_left == 0 {
                return;
            }
            state.rounds_left -= 1;
        }
        pending_phase(env, state, PENDING_AFTER_POLL);
    }
}

/// As many as libuv's `uv_run` makes after its poll phase.
const PENDING_ROUNDS: usize = 8;

/// How much of a busy loop's time looks at the sockets may take, at most:
/// one in this many parts (see `State::look_first`).
#[cfg(unix)]
const LOOK_SPACING: u32 = 8;

/// Calls the reactor's JS callback with [`CLOSING_PHASE`] in libuv's
/// closing phase of this loop turn; nothing if the reactor has closed by then.
#[cfg(unix)]
pub fn in_closing_phase(state: &Shared) -> napi::Result<()> {
    let weak = Rc::downgrade(state);
    let env = state.borrow().env;
    crate::wake::closing::in_closing_phase(
        env,
        Box::new(move || {
            // Closed (the env torn down, maybe): nobody to call.
            let Some(state) = weak.upgrade().filter(|s| !s.borrow().is_closed()) else {
                return;
            };
            let env = state.borrow().env;
            let Ok(_scope) = HandleScope::open(env) else {
                return;
            };
            let call = state.borrow_mut().phase_call(CLOSING_PHASE);
            match call {
                // Each part runs at least one of the callbacks due when the phase began.
                Ok(Some(call)) => hand_out(env, call, u32::MAX),
                Ok(None) => {}
                Err(e) => barrier::warn(&format!("closing-phase call failed: {e}")),
            }
        }),
    )
}

impl State {
    /// A call with no batch, for a phase (`CLOSING_PHASE`, `PENDING_PHASE`).
    fn phase_call(&mut self, phase: i32) -> napi::Result<Option<JsCall>> {
        let env = self.env;
        let Some(js) = &mut self.js else {
            return Ok(None);
        };
        let none = js::undefined(env)?;
        // The part number is set by `hand_out`, call by call.
        Ok(Some((js.context(env)?, js.callback.value()?, vec![js::int32(env, phase)?, none, none, none, none])))
    }

    /// The sender of the last batch's datagrams at `index` in its `peers`
    /// array, at `port`: a reply to it needs no parsing of its text.
    pub fn batch_host(&self, index: u32, port: u32) -> io::Result<SocketAddr> {
        let host = self.batch_hosts.get(index as usize);
        let mut host = *host.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no such peer in this batch"))?;
        host.set_port(crate::address::port_number(port)?);
        Ok(host)
    }

    /// After JS has seen the batch: make sure the next turn comes.
    pub fn after_turn(&mut self) {
        self.dispatching = false;
        if self.is_closed() {
            return;
        }
        self.reactor.events_handled();
        // What JS broadcast during the batch goes out now, one send per connection.
        self.reactor.uncork();
        let pending = self.turn_due();
        let changes = self.reactor.interest_changes();
        let waker = self.reactor.backend().waker();
        match &mut self.wakeup {
            Wakeup::Fd => {
                // libuv sleeps on the backend's fd with no limit of ours: a
                // source only asked again (never the case with mio) is asked
                // again at once.
                if pending || self.reactor.wait_limit().is_some() {
                    // Leftover input raises no new edge: poke the poller.
                    let _ = waker.wake();
                }
            }
            #[cfg(unix)]
            Wakeup::Thread { armed_at: None, notify, .. } if pending => {
                // Input left over (a budget spent, a shared socket's one datagram): the
                // next turn is due at once, and its own non-blocking wait sees every
                // socket. Asked of libuv directly, as the waiter would ask it: arming
                // the waiter cost a second scan of every socket and a thread hop a turn.
                let _ = muxnet_core::Wake::wake(&**notify);
            }
            Wakeup::Thread { waiter, armed_at, .. } => {
                if armed_at.is_none() {
                    #[cfg(windows)]
                    if pending {
                        let _ = waker.wake();
                    }
                    waiter.arm(self.reactor.backend().blocking_wait(), self.reactor.wait_limit());
                    *armed_at = Some(changes);
                }
            }
        }
        // Left work: the next turn comes without asking again (see `kick`).
        self.turn_asked = pending;
    }

    /// The loop will not sleep in the poll phase to come (a timer due, an
    /// immediate queued), where libuv's own poll takes what is ready at
    /// once; the waiter thread may not have run for many loop turns (on a
    /// loaded machine, hundreds: a test's fake clock ran out meanwhile).
    /// A look at the sockets: one ready, the waiter comes out with its
    /// notification written, and this poll phase runs the turn. A look
    /// scans every socket (`poll`, `select`): spaced by [`LOOK_SPACING`]
    /// times its own cost, so that beside hundreds of idle sockets a loop
    /// spinning on `setImmediate` keeps most of its speed (one look a turn
    /// took it from 1.2 M turns a second to 12 k beside 400).
    #[cfg(unix)]
    fn look_first(&mut self) {
        if self.dispatching || self.turn_asked {
            return;
        }
        let Wakeup::Thread { waiter, armed_at: Some(_), .. } = &self.wakeup else {
            return;
        };
        let start = Instant::now();
        if start < self.next_look {
            return;
        }
        let ready = self.reactor.ready_now();
        // A look the thread was preempted in (or came back cold to) took
        // tens of times its cost, and the next one came hundreds of turns
        // late on a loaded machine: a cost rises at most twofold a look
        // (from 1 µs at least: a coarse clock's 0 would stay 0).
        self.look_cost = start.elapsed().min(self.look_cost.saturating_mul(2).max(Duration::from_micros(1)));
        self.next_look = start + self.look_cost * LOOK_SPACING;
        if ready {
            waiter.finish_waits();
        }
    }

    /// A socket was closed: a waiter blocked on it lets go of it now, so
    /// that it is gone from the kernel when the close returns, as with
    /// epoll (see [`Waiter::leave_block`]).
    pub fn closed(&self) {
        if let Wakeup::Thread { waiter, armed_at: Some(_), .. } = &self.wakeup {
            waiter.leave_block();
        }
    }

    /// Work waits for the next turn: the reactor's, or JavaScript's requests.
    fn turn_due(&self) -> bool {
        self.pending_asked || self.reactor.has_pending()
    }

    /// JavaScript has requests for a pending phase (see [`PENDING_PHASE`]):
    /// after this batch, or at the start of the next turn, which is asked for.
    pub fn ask_pending(&mut self) {
        self.pending_asked = true;
    }

    /// The call for a pending phase, if JavaScript asked for one.
    fn pending_phase_call(&mut self, phase: i32) -> napi::Result<Option<JsCall>> {
        let asked = if phase == LATE_READS { self.pending_asked } else { std::mem::take(&mut self.pending_asked) };
        if !asked || self.is_closed() {
            return Ok(None);
        }
        self.phase_call(phase)
    }

    /// Called after every binding method: a waiter blocked on an old
    /// snapshot of the interest set must look again.
    pub fn kick(&mut self) {
        // Outside a batch JavaScript has seen every event: a slot freed by
        // this call is free at once, not at the next turn (which an idle
        // reactor may not have for long).
        if !self.dispatching {
            self.reactor.events_handled();
            // Work this call left for the next turn (a Drain, a pending-queue
            // request): no socket may bring that turn, so it is asked for,
            // once till it comes.
            if !self.turn_asked && self.turn_due() {
                self.turn_asked = true;
                match &self.wakeup {
                    Wakeup::Fd => drop(self.reactor.backend().waker().wake()),
                    // Out of its wait (or into none), its notification
                    // written: libuv sees it in this poll phase, if still to
                    // come, not a thread hop later (after the immediates).
                    Wakeup::Thread { waiter, armed_at: Some(_), .. } => waiter.finish_waits(),
                    // Not armed: the next turn is due already.
                    Wakeup::Thread { .. } => {}
                }
            }
        }
        let changes = self.reactor.interest_changes();
        if let Wakeup::Thread { waiter, armed_at: Some(at), .. } = &mut self.wakeup {
            if *at != changes {
                waiter.interrupt();
                *at = changes;
            }
        }
    }
}

/// Runs `f` on the reactor, then re-arms a waiter whose snapshot it made stale.
pub fn with_reactor<T>(state: &Shared, f: impl FnOnce(&mut muxnet_core::Reactor) -> io::Result<T>) -> io::Result<T> {
    with_state(state, |state| f(&mut state.reactor))
}

/// [`with_reactor`], for a call that needs more of the state than the reactor.
pub fn with_state<T>(state: &Shared, f: impl FnOnce(&mut State) -> io::Result<T>) -> io::Result<T> {
    let mut state = state.borrow_mut();
    if state.is_closed() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "the reactor is closed"));
    }
    if state.injected == Some(barrier::Injected::Call) {
        state.injected = None;
        panic!("injected panic in a binding call");
    }
    let r = f(&mut state);
    state.kick();
    r
}
