/**
 * How the command-line servers (`echo`, `chat serve`, `proxy`) stop: the
 * first SIGINT or SIGTERM starts their drain; a second, of either kind,
 * stops the process at once (the signal's default action), as Ctrl-C after
 * `docker stop` or systemd's SIGTERM expects. Until 2026-12-05 chat and
 * proxy heard a SIGINT after a SIGTERM as a first one: the drain began
 * again, its lines said twice, and the whole deadline was waited.
 */
export function onStopSignal(stop: (signal: NodeJS.Signals) => void): void {
  const first = (signal: NodeJS.Signals) => {
    process.removeListener('SIGINT', first);
    process.removeListener('SIGTERM', first);
    stop(signal);
  };
  process.once('SIGINT', first);
  process.once('SIGTERM', first);
}
