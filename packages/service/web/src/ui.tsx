import { cloneElement, type VNode } from 'preact';
import { useCallback, useEffect, useId, useState } from 'preact/hooks';
import { ApiFailure } from './api.js';

export interface Loaded<T> {
  data: T | undefined;
  error: string | undefined;
  reload: () => void;
}

/** Runs `load` when `key` changes (and on reload()); the latest answer wins. */
export function useLoad<T>(load: () => Promise<T>, key: readonly unknown[]): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let current = true;
    load().then(
      (value) => current && (setData(value), setError(undefined)),
      (failure: unknown) => current && setError(describe(failure)),
    );
    return () => {
      current = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...key, tick]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { data, error, reload };
}

export function describe(failure: unknown): string {
  if (failure instanceof ApiFailure) return failure.status === 403 ? `Not allowed: ${failure.message}` : failure.message;
  return failure instanceof Error ? failure.message : String(failure);
}

/** An action button: disabled while it runs; its error shown beside it. */
export function Action(props: { label: string; run: () => Promise<unknown>; kind?: 'danger' | 'primary'; disabled?: boolean }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const click = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await props.run();
    } catch (failure) {
      setError(describe(failure));
    } finally {
      setBusy(false);
    }
  };
  return (
    <span class="action">
      <button type="button" class={props.kind ?? ''} disabled={busy || props.disabled === true} onClick={() => void click()}>
        {props.label}
      </button>
      {error === undefined ? null : (
        <span class="error" role="alert">
          {error}
        </span>
      )}
    </span>
  );
}

export function Problem(props: { error: string | undefined }) {
  return props.error === undefined ? null : (
    <p class="error" role="alert">
      {props.error}
    </p>
  );
}

export function Loading(props: { what: string }) {
  return <p class="muted">Loading {props.what}…</p>;
}

/**
 * A labelled control (label for= its id, not wrapped: a wrapped select would be named by its
 * option too), with its hint as its description.
 */
export function Field(props: { label: string; hint?: string | undefined; children: VNode<Record<string, unknown>> }) {
  const id = useId();
  const hint = props.hint === undefined ? undefined : `${id}-hint`;
  return (
    <div class="field">
      <label for={id} class="label">
        {props.label}
      </label>
      {cloneElement(props.children, { id, 'aria-describedby': hint })}
      {hint === undefined ? null : (
        <span id={hint} class="hint">
          {props.hint}
        </span>
      )}
    </div>
  );
}

export function StateBadge(props: { state: string }) {
  return <span class={`badge state-${props.state.replace(' ', '-')}`}>{props.state}</span>;
}
