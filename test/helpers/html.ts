/** Pages read the way a browser reads them: parse5 follows the HTML standard's parsing rules. */
import { parse, type DefaultTreeAdapterMap } from 'parse5';

type Node = DefaultTreeAdapterMap['node'];
type Element = DefaultTreeAdapterMap['element'];

export interface PageElement {
  tag: string;
  attrs: Record<string, string>;
  /** The text of the element and its descendants, decoded. */
  text: string;
}

const isElement = (node: Node): node is Element => 'tagName' in node;
// A <template>'s content is a fragment of its own, but it is still markup the page carries.
const childrenOf = (node: Node): Node[] => [
  ...('childNodes' in node ? node.childNodes : []),
  ...('content' in node ? [node.content] : []),
];

function textOf(node: Node): string {
  if (node.nodeName === '#text') return (node as DefaultTreeAdapterMap['textNode']).value;
  return childrenOf(node).map(textOf).join('');
}

export class ParsedPage {
  private readonly nodes: Node[] = [];

  constructor(readonly html: string) {
    const walk = (node: Node): void => {
      this.nodes.push(node);
      childrenOf(node).forEach(walk);
    };
    walk(parse(html));
  }

  get elements(): PageElement[] {
    return this.nodes.filter(isElement).map((element) => ({
      tag: element.tagName,
      attrs: Object.fromEntries(element.attrs.map((a) => [a.name, a.value])),
      text: textOf(element),
    }));
  }

  byId(id: string): PageElement | undefined {
    return this.elements.find((element) => element.attrs.id === id);
  }

  all(tag: string): PageElement[] {
    return this.elements.filter((element) => element.tag === tag);
  }

  /** Every element and comment in document order, elements with their attribute names: what injected markup changes. */
  shape(): string[] {
    return this.nodes.flatMap((node) =>
      isElement(node)
        ? [`${node.tagName}[${node.attrs.map((a) => a.name).join(' ')}]`]
        : node.nodeName === '#comment'
          ? ['#comment']
          : [],
    );
  }

  /** Every string the page carries, decoded: its text, its comments and its attribute values. */
  values(): string[] {
    return this.nodes.flatMap((node) => {
      if (isElement(node)) return node.attrs.map((a) => a.value);
      if (node.nodeName === '#text') return [node.value];
      if (node.nodeName === '#comment') return [node.data];
      return [];
    });
  }
}

export function parsePage(html: string): ParsedPage {
  return new ParsedPage(html);
}
