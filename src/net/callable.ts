/**
 * node:net's classes are functions: `net.Socket()` and `net.Server()` work
 * without `new`, and an ES5-style subclass initialises itself with them
 * (`net.Server.call(this, options)` after `util.inherits(MyServer,
 * net.Server)`, the way many packages are written). A class can do
 * neither, so it is exported through a plain function that does both and
 * shares the class's prototype: `new`, `extends` and `instanceof` reach the
 * class itself. A function, not a proxy, because V8 names a stack frame by
 * its receiver's `constructor` only when that is a function (a listener's
 * frame reads `Socket.<anonymous>`, as node's, not `Duplex.<anonymous>`).
 */
export type Callable<C extends abstract new (...args: never[]) => unknown> = C & ((...args: ConstructorParameters<C>) => InstanceType<C>);

type Body = (newTarget: unknown, self: unknown, args: unknown[]) => unknown;
/**
 * The names node's classes go by. V8 names a frame by the function's name
 * in the source (not by its `name` property), so each is spelled here.
 */
const NAMED = {
  Socket: (body: Body) =>
    function Socket(this: unknown, ...args: unknown[]) {
      return body(new.target, this, args);
    },
  Server: (body: Body) =>
    function Server(this: unknown, ...args: unknown[]) {
      return body(new.target, this, args);
    },
};

/** `cls` as node's `name` is: callable without `new`, of node's arity (`length`). */
export function callable<C extends new (...args: never[]) => unknown>(cls: C, name: keyof typeof NAMED, length: number): Callable<C> {
  const exported: (this: unknown, ...args: unknown[]) => unknown = NAMED[name]((newTarget, self, args) => {
    const params = args as ConstructorParameters<C>;
    // `new net.Socket()`, or a subclass's `super()`: the class builds it for the subclass.
    if (newTarget) return Reflect.construct(cls, params, newTarget === exported ? cls : (newTarget as C));
    // node:net's own test: `if (!(this instanceof Server)) return new Server(…)`.
    if (!(self instanceof cls)) return new cls(...params);
    initialise(cls, self as object, params);
    return undefined;
  });
  Object.defineProperty(exported, 'length', { value: length });
  exported.prototype = cls.prototype;
  // node's statics are its base's (`net.Socket`'s prototype is `stream.Duplex`); the class's own stay inside.
  Object.setPrototypeOf(exported, Object.getPrototypeOf(cls));
  // `socket.constructor === net.Socket`, as node's.
  Object.defineProperty(cls.prototype, 'constructor', { value: exported, writable: true, configurable: true });
  return exported as unknown as Callable<C>;
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
