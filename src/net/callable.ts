/**
 * node:net's classes are functions: `net.Socket()` and `net.Server()` work
 * without `new`, and an ES5-style subclass initialises itself with them
 * (`net.Server.call(this, options)` after `util.inherits(MyServer,
 * net.Server)`, the way many packages are written). A class can do
 * neither, so it is exported through a proxy that does both; `new`,
 * `extends`, `instanceof` and the prototype pass through to the class itself.
 */
export type Callable<C extends abstract new (...args: never[]) => unknown> = C & ((...args: ConstructorParameters<C>) => InstanceType<C>);

export function callable<C extends new (...args: never[]) => unknown>(cls: C): Callable<C> {
  const exported = new Proxy(cls, {
    apply: (target, self: unknown, args: ConstructorParameters<C>) => {
      // node:net's own test: `if (!(this instanceof Server)) return new Server(…)`.
      if (!(self instanceof target)) return new target(...args);
      initialise(target, self as object, args);
      return undefined;
    },
  }) as Callable<C>;
  // `socket.constructor === net.Socket`, as node's.
  Object.defineProperty(cls.prototype, 'constructor', { value: exported, writable: true, configurable: true });
  return exported;
}

/**
 * Gives `self` what constructing `cls` gives an instance. A class
 * constructor cannot run on an object already made: one is made (of
 * `self`'s own class, so that what its constructor calls is the
 * subclass's), its own properties — fields, event listeners, stream state —
 * become `self`'s, and it is left an alias of `self`: what the constructor
 * kept of it (a callback made in a field, an abort signal's listener, a
 * given fd's registration) reads and writes `self`'s state from then on.
 */
function initialise<C extends new (...args: never[]) => unknown>(cls: C, self: object, args: ConstructorParameters<C>): void {
  const proto: unknown = Object.getPrototypeOf(self);
  const own = (self as { constructor?: unknown }).constructor;
  const newTarget = typeof own === 'function' && own.prototype === proto ? own : cls;
  const made = Reflect.construct(cls, args, newTarget) as object;
  Object.defineProperties(self, Object.getOwnPropertyDescriptors(made));
  for (const key of Reflect.ownKeys(made)) Reflect.deleteProperty(made, key);
  // Reads fall through to `self`; a write lands there too, not as a property of the alias.
  Object.setPrototypeOf(made, new Proxy(self, { set: (target, key, value) => Reflect.set(target, key, value) }));
}
