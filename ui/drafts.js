// Unsaved edits, kept per flow in this browser (localStorage), so leaving the
// editor, reloading or closing the tab loses nothing: coming back to the flow
// brings the edits back, until they are saved or discarded on purpose.

const PREFIX = "hero_logic_draft:";

export class Drafts {
  /** @param {Storage} storage where drafts live (`localStorage`) */
  constructor(storage) {
    this.storage = storage;
  }

  /** The draft of flow `name` ("" for a new flow), when it differs from `stored`. */
  get(name, stored) {
    const draft = this.storage.getItem(PREFIX + name);
    return draft !== null && draft !== stored ? draft : null;
  }

  /** Keep `text` as the draft of `name`; text equal to `stored` is no draft. */
  keep(name, text, stored) {
    if (text === stored) {
      this.forget(name);
      return;
    }
    try {
      this.storage.setItem(PREFIX + name, text);
    } catch {
      // A full storage keeps the edits in the editor only; nothing else breaks.
    }
  }

  forget(name) {
    this.storage.removeItem(PREFIX + name);
  }
}
