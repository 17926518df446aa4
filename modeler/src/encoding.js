// Turn the bytes of a BPMN file into text. Files from Visio add-ins and Enterprise Architect declare
// ISO-8859-1 or windows-1252; bpmn-js only reads text, and the modeler always saves UTF-8.

const DECLARATION = /^(\uFEFF?\s*<\?xml[^>]*?encoding\s*=\s*)(["'])([A-Za-z0-9._-]+)\2/;

export function decodeBpmn(buffer, translate) {
  const bytes = new Uint8Array(buffer);
  const head = new TextDecoder('latin1').decode(bytes.slice(0, 256));
  const declared = DECLARATION.exec(head);
  const encoding = declared ? declared[3] : 'UTF-8';
  let text;

  try {
    text = new TextDecoder(encoding, { fatal: true }).decode(bytes);
  } catch (error) {
    throw new Error(translate('The file is not readable as {encoding} text; save it as UTF-8 and open it again.',
      { encoding }), { cause: error });
  }

  // The text is Unicode now, so the declaration must name UTF-8, or the saved file would be misread.
  return text.replace(DECLARATION, '$1$2UTF-8$2');
}
