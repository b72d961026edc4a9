/**
 * The extension's commands, and the command palette's entries for them.
 */
import { ILabShell, JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { LabIcon } from '@jupyterlab/ui-components';

import { RunDetailView } from './detail';
import { RunsSidebar } from './sidebar';

const CATEGORY = 'Experiment Runs';

/** The command ids (stable: docs and tests use them). */
export namespace CommandIDs {
  export const openSidebar = 'jupyter-mlops:open-sidebar';
  export const refresh = 'jupyter-mlops:refresh';
  export const showThisNotebook = 'jupyter-mlops:show-notebook-runs';
  export const showAll = 'jupyter-mlops:show-all-runs';
  export const search = 'jupyter-mlops:search';
  export const compareSelected = 'jupyter-mlops:compare-selected';
  export const showRun = 'jupyter-mlops:show-run';
  export const compare = 'jupyter-mlops:compare';
  export const replay = 'jupyter-mlops:replay-run';
}

/** What the commands act on: the shell, the sidebar, and how runs are shown and compared. */
export interface ICommandContext {
  app: JupyterFrontEnd;
  labShell: ILabShell;
  sidebar: RunsSidebar;
  icon: LabIcon;
  showRun(id: string): RunDetailView;
  compare(ids: string[]): void;
}

/** Add the commands, and those a person looks for to the palette (when there is one). */
export function addCommands(context: ICommandContext, palette: ICommandPalette | null): void {
  const { app, labShell, sidebar, showRun, compare } = context;
  const { commands } = app;
  const showSidebar = (scope: 'notebook' | 'all') => {
    sidebar.scope = scope;
    labShell.activateById(sidebar.id);
  };
  commands.addCommand(CommandIDs.openSidebar, {
    label: 'Show Experiment Runs',
    caption: 'Open the runs sidebar',
    icon: context.icon,
    execute: () => labShell.activateById(sidebar.id)
  });
  commands.addCommand(CommandIDs.refresh, {
    label: 'Refresh Experiment Runs',
    execute: () => sidebar.refresh()
  });
  commands.addCommand(CommandIDs.showThisNotebook, {
    label: 'Show Runs of This Notebook',
    isToggled: () => sidebar.scope === 'notebook',
    execute: () => showSidebar('notebook')
  });
  commands.addCommand(CommandIDs.showAll, {
    label: 'Show All Runs',
    isToggled: () => sidebar.scope === 'all',
    execute: () => showSidebar('all')
  });
  commands.addCommand(CommandIDs.search, {
    label: 'Filter Experiment Runs…',
    execute: () => {
      labShell.activateById(sidebar.id);
      sidebar.focusSearch();
    }
  });
  commands.addCommand(CommandIDs.compareSelected, {
    label: 'Compare Selected Runs',
    isEnabled: () => sidebar.selected.length >= 2,
    execute: () => compare(sidebar.selected)
  });
  commands.addCommand(CommandIDs.showRun, {
    label: args => (args.id ? `Show Run ${String(args.id).slice(0, 8)}` : 'Show Run'),
    execute: args => {
      if (typeof args.id === 'string') {
        showRun(args.id);
      }
    }
  });
  commands.addCommand(CommandIDs.compare, {
    label: 'Compare Runs',
    execute: args => {
      if (Array.isArray(args.ids)) {
        compare(args.ids.map(String));
      }
    }
  });
  commands.addCommand(CommandIDs.replay, {
    label: 'Replay the Run in Focus',
    execute: args => {
      const current = labShell.currentWidget;
      const view =
        typeof args.id === 'string'
          ? showRun(args.id)
          : current instanceof RunDetailView
            ? current
            : null;
      return view?.replay();
    }
  });
  if (palette) {
    for (const command of [
      CommandIDs.openSidebar,
      CommandIDs.refresh,
      CommandIDs.showThisNotebook,
      CommandIDs.showAll,
      CommandIDs.search,
      CommandIDs.compareSelected,
      CommandIDs.replay
    ]) {
      palette.addItem({ command, category: CATEGORY });
    }
  }
}
