//! The EQL a compiled Sigma rule amounts to (`unithunt rules convert`).
