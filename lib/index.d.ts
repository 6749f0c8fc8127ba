// Types of the programmatic API. The data shapes come from the napi-generated ../index.d.ts.
import type * as native from '../index';

export interface CommandOptions {
  /** A directory inside the workspace; defaults to process.cwd(). */
  cwd?: string;
  /** Registered profile; default `development` (`restart` reuses the running profile). */
  profile?: string;
  service?: string;
  services?: string[];
  /** Every service instead of the default set. */
  all?: boolean;
  /** How the command is shown in errors; default `orchestrator <verb>`. */
  command?: string;
}

export interface ServiceResult {
  service: string;
  kind: 'app' | 'dependency';
  /** start | replace | keep | reload | restart | stop | already-stopped */
  action: string;
  profile: string;
  status: string;
  pids: number[];
  ports: number[];
  install: string | null;
  readyMs: number | null;
}

export interface CommandResult {
  workspace: string;
  profile: string;
  services: ServiceResult[];
}

export declare function start(opts?: CommandOptions): Promise<CommandResult>;
export declare function restart(opts?: CommandOptions): Promise<CommandResult>;
export declare function stop(opts?: CommandOptions): Promise<CommandResult>;
export declare function setup(opts?: CommandOptions): Promise<{ workspace: string; services: native.SetupReport[] }>;
export declare function test(opts?: CommandOptions): Promise<{ workspace: string; services: { service: string; profile: string; passed: boolean }[] }>;

export interface StatusOptions {
  cwd?: string;
  /** Profile whose declared ports are shown for services that are not running. */
  profile?: string;
  /** Only this service (unknown: EXIT_SERVICE_UNKNOWN). */
  service?: string;
  /** Throw EXIT_UNHEALTHY when a service is failed or degraded. */
  strict?: boolean;
  command?: string;
}

/** One health snapshot of every app and dependency: the object `status --json` prints. */
export declare function status(opts?: StatusOptions): Promise<native.StatusSnapshot>;

export interface WhyOptions {
  /** The service to explain. */
  service: string;
  cwd?: string;
  /** The registered profile a start would use (default development). */
  profile?: string;
  command?: string;
}

/** Why a service is not up (`why --json`'s object as `why`, and the text `why` prints). Nothing
 * is started or changed; an unknown service throws EXIT_SERVICE_UNKNOWN. */
export declare function why(opts: WhyOptions): ReturnType<typeof native.why>;

export interface VerifyOptions {
  cwd?: string;
  /** The registered profile to check (default development). */
  profile?: string;
  /** Check every registered profile. */
  allProfiles?: boolean;
  command?: string;
}

/** Lints and dry-runs the workspace without starting anything. Problems are in the report
 * (`ok: false`), not thrown; an unregistered profile throws EXIT_PROFILE_UNDEFINED. */
export declare function verify(opts?: VerifyOptions): native.VerifyResult;

export interface LogsOptions {
  cwd?: string;
  service?: string;
  services?: string[];
  /** `30m`, `48h`, `7d`, or an RFC 3339 instant. */
  since?: string;
  until?: string;
  tail?: number;
  stream?: 'out' | 'err' | 'all';
  grep?: string;
  level?: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
  command?: string;
}

/** Prints the window's start, then every new line (across rotations) until the process stops. */
export declare function followLogs(opts?: LogsOptions & { json?: boolean }): Promise<void>;

/** Log entries of a window, merged in time order across streams (and services). */
export declare function logs(opts?: LogsOptions): Promise<native.LogEntry[]>;

export interface LogStreamOptions extends LogsOptions {
  /** After the window, keep yielding new lines as they are written (across rotations). */
  follow?: boolean;
  /** Ends a follow. Breaking out of the loop ends it too. */
  signal?: AbortSignal;
  /** Entries pulled from the addon at a time (default 1000). */
  batch?: number;
  /** How often a follow looks for new lines, in ms (default 200). */
  pollMs?: number;
}

/** The same entries as `logs`, as an async iterator: `for await (const e of logStream({ service, since: '1h' }))`. */
export declare function logStream(opts?: LogStreamOptions): AsyncGenerator<native.LogEntry, void, undefined>;

/** The raw window, file by file in time order (no `tail`, `grep` or `level`): each plain file's part
 * is found by binary search and read at once, without parsing its lines. */
export declare function logSlice(opts?: Omit<LogsOptions, 'tail' | 'grep' | 'level'>): native.LogSlice[];

/** Thrown by every operation: the actionable-error contract. */
export declare class OrchestratorError extends Error {
  /** Exit-code name, e.g. `EXIT_PORT_IN_USE`. */
  code: string;
  exitCode: number;
  service: string | null;
  command: string;
  remediation: string[];
  toJSON(): { error: Omit<OrchestratorError, 'toJSON' | 'name' | 'stack'> };
}

/** The Nx plugin name (the package is registered in nx.json `plugins`). */
export declare const name: string;

/** Exit-code name → number. */
export declare const exitCodes: Record<string, number>;
export { native };
