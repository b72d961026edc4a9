/**
 * The jupyter-mlops JupyterLab extension: a sidebar of tracked runs, their detail, comparison
 * and replay, and commands for all of it in the command palette.
 */
import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

import { addCommands } from './commands';
import { CompareView } from './compare';
import { RunDetailView } from './detail';
import { RunsSidebar } from './sidebar';

export { CommandIDs } from './commands';

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

    // One view a run or a set of compared runs: asking again brings the open one forward.
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
      showInMain(
        `run:${id}`,
        () =>
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

    addCommands({ app, labShell, sidebar, icon: runsIcon, showRun, compare }, palette);
  }
};

export default plugin;
