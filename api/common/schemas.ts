import { Type } from '../../lib/schema';

/** Every 4xx/5xx JSON body: a stable machine-readable name and a sentence for people. */
export const ErrorResponse = Type.Object({ error: Type.String(), message: Type.String() }, { $id: 'Error' });
export const ErrorRef = Type.Ref(ErrorResponse);
