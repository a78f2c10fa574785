/** QAPI's ErrorClass in QEMU 7.2 (qapi/error.json): every class a QMP error can have. */
export const QMP_ERROR_CLASSES = ['GenericError', 'CommandNotFound', 'DeviceNotActive', 'DeviceNotFound', 'KVMMissingCap'] as const;
export type QmpErrorClass = (typeof QMP_ERROR_CLASSES)[number];

/** The classes of the errors qmp-mux itself reports (QEMU's texts and classes where it answers for QEMU). */
export type ErrorClass = Extract<QmpErrorClass, 'GenericError' | 'CommandNotFound'>;
