// The clock lives in the core (src/core/clock.ts); this keeps the run's imports short.
export { systemClock, type Clock, type Timer } from '../core/clock.js';
