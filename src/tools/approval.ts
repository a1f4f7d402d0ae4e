// The decision lives in the pure core (docs/architecture.md); this path keeps its importers.
export * from '../core/approval.js';
