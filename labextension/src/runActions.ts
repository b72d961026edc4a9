/**
 * What a person does to a run from its detail, through JupyterLab's dialogs: rename, tag,
 * annotate, delete, download an artifact. Errors are shown in a dialog as one line.
 */
import { Dialog, InputDialog, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { ApiError, IRunChange, IRunDetail, api } from './api';
import { h } from './dom';
import { parseTag } from './tags';

/** How long a downloaded artifact's object URL stays valid: the browser has read it by then. */
const DOWNLOAD_URL_MS = 60_000;

/** A dialog body holding text as text. */
export function textBody(text: string): Widget {
  return new Widget({ node: h('p', { className: 'jp-mlops-dialog-text' }, text) });
}

function message(error: unknown): string {
  return String(error instanceof Error ? error.message : error);
}

async function tell(title: string, body: string | Widget): Promise<void> {
  await showDialog({ title, body, buttons: [Dialog.okButton()] });
}

/** Ask for a run's new name: the change, or null if none. */
export async function askName(run: IRunDetail): Promise<IRunChange | null> {
  const result = await InputDialog.getText({
    title: 'Rename run',
    text: run.name,
    label: 'New name'
  });
  const name = result.value;
  if (result.button.accept && name !== null && name.trim() && name !== run.name) {
    return { name: name.trim() };
  }
  return null;
}

/** Ask for a tag as key=value: the change, or null if none (told when it is not a tag). */
export async function askTag(): Promise<IRunChange | null> {
  const result = await InputDialog.getText({
    title: 'Tag run',
    label: 'Tag as key=value',
    placeholder: 'team=vision'
  });
  if (!result.button.accept || !result.value) {
    return null;
  }
  const tag = parseTag(result.value);
  if (!tag) {
    await tell('Not a tag', textBody('Write a tag as key=value.'));
    return null;
  }
  return { tags: { [tag[0]]: tag[1] } };
}

/** Ask for a run's note (empty clears it): the change, or null if cancelled. */
export async function askNote(run: IRunDetail): Promise<IRunChange | null> {
  const result = await InputDialog.getText({
    title: 'Note on the run',
    text: run.note ?? '',
    label: 'Note (empty to clear)'
  });
  return result.button.accept && result.value !== null ? { note: result.value } : null;
}

/** Change a run; whether it changed (a failure is shown). */
export async function changeRun(runId: string, change: IRunChange): Promise<boolean> {
  try {
    await api.update(runId, change);
    return true;
  } catch (error) {
    await tell('Could not change the run', textBody(message(error)));
    return false;
  }
}

/** Delete a run once the person confirms; whether it was deleted (a failure is shown). */
export async function deleteRun(run: IRunDetail): Promise<boolean> {
  const result = await showDialog({
    title: 'Delete run?',
    body: textBody(
      `Delete the run "${run.name}" (${run.id.slice(0, 12)}) with its params, metrics, cells ` +
        'and replays? This cannot be undone.'
    ),
    buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
  });
  if (!result.button.accept) {
    return false;
  }
  try {
    await api.remove(run.id);
    return true;
  } catch (error) {
    await tell('Could not delete the run', textBody(message(error)));
    return false;
  }
}

/** Save an artifact's stored bytes as a file of the browser's. */
export async function downloadArtifact(runId: string, name: string): Promise<void> {
  try {
    const blob = await api.artifact(runId, name);
    const link = h('a', {
      href: URL.createObjectURL(blob),
      download: name.split('/').pop() || 'artifact'
    });
    link.style.display = 'none';
    document.body.appendChild(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(link.href), DOWNLOAD_URL_MS);
  } catch (error) {
    await tell(
      `Cannot download ${name}`,
      error instanceof ApiError ? error.message : String(error)
    );
  }
}
