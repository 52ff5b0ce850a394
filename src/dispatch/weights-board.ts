// The weights a step computes with, as the transports publish them: the
// flat parameter buffer and its version. The engine bumps the version when
// a step starts (the owner wrote new weights between steps); a transport
// sends or shares the buffer when a worker lacks that version. Nobody
// writes `params` while a step runs.
export interface WeightsBoard {
  version: number;
  readonly params: Float32Array;
}
