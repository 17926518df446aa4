// Replaces the properties panel's `debounceInput` service with one whose pending input can be written at
// once. Saving calls `flush()` first, so text typed less than the debounce delay before a click on
// "Save draft" or "Deploy" is part of the saved file.

const DELAY_MS = 300;

function FlushableDebounceInput() {
  const pending = new Set();

  function debounceInput(callback, delay = DELAY_MS) {
    let timer = null;
    let lastArguments = [];
    const entry = {
      run() {
        clearTimeout(timer);
        timer = null;
        pending.delete(entry);
        callback(...lastArguments);
      }
    };

    return function debounced(...args) {
      lastArguments = args;
      clearTimeout(timer);
      pending.add(entry);
      timer = setTimeout(entry.run, delay);
    };
  }

  debounceInput.flush = () => {
    for (const entry of [ ...pending ]) {
      entry.run();
    }
  };

  return debounceInput;
}

export default {
  debounceInput: [ 'factory', FlushableDebounceInput ]
};
