/**
 * The jupyter-mlops JupyterLab extension: a sidebar of tracked runs, their detail, comparison
 * and replay, and commands for all of it in the command palette.
 */
import { ILabShell, ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { CompareView } from './compare';
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

const runsIcon = new LabIcon({
  name: 'jupyter-mlops:runs',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">' +
    '<g class="jp-icon3" fill="#616161">' +
    '<path d="M3 19h18v2H3zM5 10h3v7H5zm5.5-5h3v12h-3zM16 13h3v4h-3z"/>' +
    '</g></svg>'
});

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlops:plugin',
  description: 'Browse, compare and replay tracked notebook runs.',
  autoStart: true,
  requires: [ILabShell],
  optional: [INotebookTracker, ICommandPalette, ILayoutRestorer],
  activate: (
    app: JupyterFrontEnd,
    labShell: ILabShell,
    notebooks: INotebookTracker | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null
  ) => {
    const sidebar = new RunsSidebar();
    sidebar.title.icon = runsIcon;
    labShell.add(sidebar, 'left', { rank: 600 });
    if (restorer) {
      restorer.add(sidebar, sidebar.id);
    }

    const views = new Map<string, Widget>();
    const showInMain = (key: string, make: () => Widget): Widget => {
      let view = views.get(key);
      if (!view || view.isDisposed) {
        view = make();
        views.set(key, view);
        view.disposed.connect(() => views.delete(key));
        labShell.add(view, 'main');
      }
      labShell.activateById(view.id);
      return view;
    };
    const showRun = (id: string): RunDetailView =>
      showInMain(`run:${id}`, () =>
        new RunDetailView(id, {
          openRun: showRun,
          openNotebook: path => void app.commands.execute('docmanager:open', { path }),
          changed: () => void sidebar.refresh()
        })
      ) as RunDetailView;
    const compare = (ids: string[]): void => {
      showInMain(`compare:${ids.join(',')}`, () => new CompareView(ids, showRun));
    };

    sidebar.runOpened.connect((_, run) => showRun(run.id));
    sidebar.compareRequested.connect((_, ids) => compare(ids));

    // Follow the notebook in focus: the tracker keeps the last notebook that had focus.
    if (notebooks) {
      const follow = () => {
        const panel = notebooks.currentWidget;
        sidebar.setNotebook(panel ? panel.context.path : null);
      };
      notebooks.currentChanged.connect(follow);
      notebooks.widgetAdded.connect((_, panel) => panel.context.pathChanged.connect(follow));
      follow();
    } else {
      sidebar.scope = 'all';
    }

    const { commands } = app;
    commands.addCommand(CommandIDs.openSidebar, {
      label: 'Show Experiment Runs',
      caption: 'Open the runs sidebar',
      icon: runsIcon,
      execute: () => labShell.activateById(sidebar.id)
    });
    commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh Experiment Runs',
      execute: () => sidebar.refresh()
    });
    commands.addCommand(CommandIDs.showThisNotebook, {
      label: 'Show Runs of This Notebook',
      isToggled: () => sidebar.scope === 'notebook',
      execute: () => {
        sidebar.scope = 'notebook';
        labShell.activateById(sidebar.id);
      }
    });
    commands.addCommand(CommandIDs.showAll, {
      label: 'Show All Runs',
      isToggled: () => sidebar.scope === 'all',
      execute: () => {
        sidebar.scope = 'all';
        labShell.activateById(sidebar.id);
      }
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
      isEnabled: () => labShell.currentWidget instanceof RunDetailView || typeof app.commands !== 'undefined',
      execute: args => {
        const current = labShell.currentWidget;
        const view =
          typeof args.id === 'string' ? showRun(args.id) : current instanceof RunDetailView ? current : null;
        if (view) {
          return view.replay();
        }
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
};

export default plugin;
