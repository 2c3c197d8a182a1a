/**
 * node:net's classes are functions: `net.Socket()` and `net.Server()` work
 * without `new`. A class is not callable, so export it through a proxy that
 * constructs when called; `new`, `extends`, `instanceof` and the prototype
 * pass through to the class itself.
 */
export type Callable<C extends abstract new (...args: never[]) => unknown> = C & ((...args: ConstructorParameters<C>) => InstanceType<C>);

export function callable<C extends new (...args: never[]) => unknown>(cls: C): Callable<C> {
  return new Proxy(cls, {
    apply: (target, _this, args: ConstructorParameters<C>) => new target(...args),
  }) as Callable<C>;
}
