/** Versions that both sides agree on. */

/** The product version, printed by `--version` and reported by the agent. */
export const PRODUCT_VERSION = '0.1.0';

/** The wire protocol version this build speaks. */
export const PROTOCOL_VERSION = 1;

/** The oldest agent protocol version the control plane still accepts. */
export const MIN_PROTOCOL_VERSION = 1;
