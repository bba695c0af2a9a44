// A minimal typed-event emitter: every event of the client lives on one
// object (socket.io users were confused when reconnect events moved to
// another one). A throwing listener never breaks the client.

export class Emitter {
  constructor() {
    this.listeners = new Map();
  }

  /** Adds a listener; returns a function that removes it. */
  on(name, fn) {
    if (!this.listeners.has(name)) this.listeners.set(name, new Set());
    this.listeners.get(name).add(fn);
    return () => this.off(name, fn);
  }

  /** Adds a listener that runs once. */
  once(name, fn) {
    const off = this.on(name, (detail) => {
      off();
      fn(detail);
    });
    return off;
  }

  off(name, fn) {
    const set = this.listeners.get(name);
    if (set) set.delete(fn);
  }

  emit(name, detail) {
    const set = this.listeners.get(name);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(detail);
      } catch (e) {
        queueMicrotask(() => {
          throw e; // surfaced as an uncaught error, not swallowed
        });
      }
    }
  }
}
