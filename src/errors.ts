// One catalog of errors with stable codes (ws / fastify style). docs/errors.md
// lists every code (a test checks it); messages name the field or the place and
// say what to do.

export type ErrorCode =
  | 'DPT_ERR_CONFIG'          // a config field is missing, unknown or invalid
  | 'DPT_ERR_MODEL_SPEC'      // a model spec field is invalid
  | 'DPT_ERR_SHAPE'           // a layer's input shape does not fit
  | 'DPT_ERR_DATASET'         // a dataset file or CSV row is invalid
  | 'DPT_ERR_CACHE'           // the dataset cache folder cannot be written
  | 'DPT_ERR_MODEL_FILE'      // a saved model file is invalid or does not match
  | 'DPT_ERR_FIXTURE'         // a conformance fixture file cannot be read
  | 'DPT_ERR_CHECKPOINT'      // a checkpoint is missing, corrupt or of another config
  | 'DPT_ERR_MESSAGE'         // a protocol message failed validation
  | 'DPT_ERR_USAGE'           // a command-line argument is invalid (exit code 2)
  | 'DPT_ERR_WORKER'          // workers failed: a range failed too often in one step, threads did not start, a worker cannot take part
  | 'DPT_ERR_CONNECT'         // a worker reached no coordinator within --give-up-after (never welcomed)
  | 'DPT_ERR_REFUSED'         // the coordinator refused a worker for good (token, protocol, kernels, quarantined)
  | 'DPT_ERR_OUTPUT'          // a path the user gave cannot be written (names the path and the cause)
  | 'DPT_ERR_DIVERGED'        // training diverged: the loss is not finite
  | 'DPT_ERR_MEMORY'          // the kernels' fixed WebAssembly memory is full
  | 'DPT_ERR_KERNELS';        // the WebAssembly kernels cannot be fetched or compiled (names the source)

export class DptrainError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'DptrainError';
    this.code = code;
  }
}

export function dptError(code: ErrorCode, message: string): DptrainError {
  return new DptrainError(code, message);
}

/** Format a shape for messages: [28, 28]. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
