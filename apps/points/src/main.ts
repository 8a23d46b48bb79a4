// placeholder: replaced by the points service
export {};
