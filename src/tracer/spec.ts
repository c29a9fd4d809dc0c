/** The shape of the generated message tables (src/tracer/messages.ts). */
export type FieldType = 'int' | 'uint' | 'count' | 'port' | 'double' | 'bool' | 'addr' | 'errno' | 'text' | 'enum';

export interface FieldSpec {
  readonly name: string;
  readonly type: FieldType;
  readonly optional: boolean;
  /** the enum's words, for type 'enum' */
  readonly words?: readonly string[];
}

export interface MessageSpec {
  readonly tag: string;
  /** records: tracer to Node; table: Node to tracer */
  readonly direction: 'records' | 'table' | 'control';
  readonly fields: readonly FieldSpec[];
}
