// Saving a file from the page: the browser downloads bytes or a Blob under a file name. The demo
// saves its trained model with it, the labs their trained models, tables (CSV) and plots (PNG).

/** Saves `data` (a Blob, or bytes: a Uint8Array or an ArrayBuffer) as the file `name`. */
export function download(name, data) {
  const url = URL.createObjectURL(data instanceof Blob ? data : new Blob([data]));
  const link = document.createElement('a');
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
