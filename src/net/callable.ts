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

/**
 * `cls` as node's `name` is: callable without `new`, of node's arity
 * (`length`). With `nodes`, node's own class of that name: its instances (a
 * TLS socket, an http server: node's classes extend node:net's) are
 * `instanceof` the exported one too, as they are of node:net's.
 */
export function callable<C extends new (...args: never[]) => unknown>(cls: C, name: keyof typeof NAMED, length: number, nodes?: abstract new (...args: never[]) => unknown): Callable<C> {
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
  if (nodes !== undefined) {
    Object.defineProperty(exported, Symbol.hasInstance, {
      // A subclass (which inherits this) takes its own instances only.
      value(this: unknown, value: unknown): boolean {
        return Function.prototype[Symbol.hasInstance].call(this, value) || (this === exported && value instanceof nodes);
      },
    });
  }
  exported.prototype = cls.prototype;
  // node's statics are its base's (`net.Socket`'s prototype is `stream.Duplex`); the class's own stay inside.
  Object.setPrototypeOf(exported, (Object.getPrototypeOf(cls.prototype) as { constructor: unknown }).constructor as object);
  // `socket.constructor === net.Socket`, as node's.
  Object.defineProperty(cls.prototype, 'constructor', { value: exported, writable: true, configurable: true });
  return exported as unknown as Callable<C>;
}

/** The object `initialise()` has the class's constructor run on, taken by the base (see `adoptable`). */
let adopting: object | undefined;

/**
 * `base` (a function of Node's: `stream.Duplex`, `EventEmitter`) as a
 * class's `extends`: it initialises the object made for it as `base` does
 * (`base.call(this, …)`, as node:net's own classes do), or, when
 * `initialise()` runs the class's constructor on an object already made (an
 * ES5-style subclass's instance), that object, and returns it — a base
 * constructor's return is the derived class's `this`, so the class's fields
 * and constructor body land on that very object. (Not
 * `Reflect.construct(base, …)` for the usual case: made by a second
 * constructor, each instance got a hidden class of its own — 6× slower to
 * make, and V8's maps piled up.)
 */
export function adoptable<B extends abstract new (...args: any[]) => object>(base: B): B {
  function Adoptable(this: object, ...args: unknown[]): object {
    const self = adopting ?? this;
    adopting = undefined;
    Reflect.apply(base, self, args);
    return self;
  }
  Adoptable.prototype = base.prototype;
  Object.setPrototypeOf(Adoptable, base);
  return Adoptable as unknown as B;
}

/**
 * Gives `self` what constructing `cls` gives an instance: the class's
 * constructor runs on `self` itself (see `adoptable`), its own class's
 * (`self`'s constructor's) methods called where the constructor calls them.
 */
function initialise<C extends new (...args: never[]) => unknown>(cls: C, self: object, args: ConstructorParameters<C>): void {
  const proto: unknown = Object.getPrototypeOf(self);
  const own = (self as { constructor?: unknown }).constructor;
  const newTarget = typeof own === 'function' && own.prototype === proto ? own : cls;
  adopting = self;
  try {
    Reflect.construct(cls, args, newTarget);
  } finally {
    // (Left set if the constructor threw before reaching its base.)
    adopting = undefined;
  }
}
